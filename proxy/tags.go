package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"

	"github.com/trustproxy/trustproxy/policy"
)

const maxTagsBody = 16 << 20

// serveTags answers GET /v2/<name>/tags/list. Under a trust rule the list is
// the tags TUF vouches for, so clients never see a tag they could not pull;
// under allow it is the upstream's list.
func (s *Server) serveTags(w http.ResponseWriter, r *http.Request, rt route, info *requestInfo) error {
	subj := policy.Subject{Upstream: rt.upstream.name, Repository: rt.repo, Client: clientAddr(r)}
	tags, d, fromTrust := s.policy.Tags(subj)
	if !d.Allowed {
		info.decision = "deny"
		return errDenied(d.Message(subj))
	}
	if fromTrust && d.Mode == policy.ModeEnforce {
		sort.Strings(tags)
		tags = paginate(tags, r.URL.Query().Get("last"), r.URL.Query().Get("n"))
		if tags == nil {
			tags = []string{}
		}
		body, _ := json.Marshal(struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}{rt.repo, tags})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
		return nil
	}
	path := "tags/list"
	if q := r.URL.Query(); q.Get("n") != "" || q.Get("last") != "" {
		q.Del("ns")
		path += "?" + q.Encode()
	}
	resp, err := s.upstreamDo(r.Context(), rt, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		oe := upstreamStatusError(rt.upstream.name, resp.StatusCode, resp.Header.Get("Retry-After"), "tags of "+rt.repoKey())
		if oe.Code == "MANIFEST_UNKNOWN" {
			oe.Code = "NAME_UNKNOWN"
		}
		return oe
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTagsBody))
	if err != nil {
		return errBadGateway("trustproxy: tags of " + rt.repoKey() + ": " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
	return nil
}

// paginate applies the distribution spec's n and last parameters.
func paginate(tags []string, last, n string) []string {
	if last != "" {
		i := sort.SearchStrings(tags, last)
		if i < len(tags) && tags[i] == last {
			i++
		}
		tags = tags[i:]
	}
	if k, err := strconv.Atoi(n); err == nil && k >= 0 && k < len(tags) {
		tags = tags[:k]
	}
	return tags
}
