package mirror

import (
	"context"
	"sync"

	"github.com/trustproxy/trustproxy/policy"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// Recorder remembers the target files (in-toto layouts, keys, links) that
// policy read while deciding, so that the export carries exactly the
// evidence the decisions used. Wrap each trust source before building the
// policy engine with it.
type Recorder struct {
	mu    sync.Mutex
	files map[string]map[string][]byte // trust → consistent target path → bytes
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{files: map[string]map[string][]byte{}} }

// Wrap returns ts with its verified target downloads recorded.
func (r *Recorder) Wrap(ts policy.TrustSource) policy.TrustSource {
	return &recordingSource{TrustSource: ts, r: r}
}

type recordingSource struct {
	policy.TrustSource
	r *Recorder
}

func (s *recordingSource) FetchTarget(ctx context.Context, t trustfetch.Target) ([]byte, error) {
	b, err := s.TrustSource.FetchTarget(ctx, t)
	if err != nil {
		return b, err
	}
	if p, perr := trustfetch.TargetFile(t); perr == nil {
		s.r.mu.Lock()
		if s.r.files[s.Name()] == nil {
			s.r.files[s.Name()] = map[string][]byte{}
		}
		s.r.files[s.Name()][p] = b
		s.r.mu.Unlock()
	}
	return b, nil
}

// targets returns the recorded files of one trust repository.
func (r *Recorder) targets(trust string) map[string][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]byte{}
	for p, b := range r.files[trust] {
		out[p] = b
	}
	return out
}
