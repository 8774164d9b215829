package impact

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Seen is a reference to replay, with what the log recorded of it.
type Seen struct {
	Reference string `json:"reference"`
	// Count is how many decisions the log holds for it (1 for a list).
	Count int `json:"count"`
	// Verdicts are the verdicts the log recorded, in order of first
	// appearance ("allow", "deny", ...); none for a list.
	Verdicts []string `json:"recordedVerdicts,omitempty"`
}

// maxLine bounds one log line: audit lines are a few hundred bytes, so a
// longer line is not one and is skipped whole.
const maxLine = 1 << 20

// ReadAuditLog collects the references of trustproxy's audit lines (JSON
// log lines with logger "audit" and message "decision") in order of first
// appearance. Other lines (access lines, console text) are skipped, so the
// whole log of a run can be given as it is.
func ReadAuditLog(r io.Reader) ([]Seen, error) {
	var out []Seen
	at := map[string]int{}
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := readLine(br)
		if len(line) > 0 && line[0] == '{' {
			var l struct {
				Logger    string `json:"logger"`
				Msg       string `json:"msg"`
				Reference string `json:"reference"`
				Verdict   string `json:"verdict"`
			}
			if json.Unmarshal(line, &l) == nil && l.Logger == "audit" && l.Msg == "decision" && l.Reference != "" {
				i, ok := at[l.Reference]
				if !ok {
					i = len(out)
					at[l.Reference] = i
					out = append(out, Seen{Reference: l.Reference})
				}
				out[i].Count++
				if l.Verdict != "" && !contains(out[i].Verdicts, l.Verdict) {
					out[i].Verdicts = append(out[i].Verdicts, l.Verdict)
				}
			}
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("audit log line %d: %w", n, err)
		}
	}
}

// ReadList reads one reference per line; blank lines and lines starting
// with # are skipped.
func ReadList(r io.Reader) ([]Seen, error) {
	var out []Seen
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		ref := strings.TrimSpace(sc.Text())
		if ref == "" || strings.HasPrefix(ref, "#") {
			continue
		}
		if strings.ContainsAny(ref, " \t") {
			return nil, fmt.Errorf("reference list line %d: %q is not one reference", n, ref)
		}
		if !seen[ref] {
			seen[ref] = true
			out = append(out, Seen{Reference: ref, Count: 1})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reference list: %w", err)
	}
	return out, nil
}

// readLine returns the next line without its newline; an over-long line
// comes back empty (skipped) with the rest of it consumed.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, isPrefix, err := br.ReadLine()
		if tooLong = tooLong || len(buf)+len(chunk) > maxLine; !tooLong {
			buf = append(buf, chunk...)
		}
		if err != nil || !isPrefix {
			if tooLong {
				return nil, err
			}
			return buf, err
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
