package attachment

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

// Attachment manifests come from upstreams (and exports): whatever the
// bytes, Parse must not panic, and what it accepts is an artifact naming
// the subject.
func FuzzParse(f *testing.F) {
	subject := digest.FromString("subject")
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"`+subject.String()+`","size":1}}`), false)
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), true)
	f.Add([]byte(`{}`), true)
	f.Fuzz(func(t *testing.T, body []byte, tagged bool) {
		m, err := Parse("application/vnd.oci.image.manifest.v1+json", body, subject, tagged)
		if err != nil {
			return
		}
		if m.Runnable() {
			t.Fatalf("accepted a runnable image: %s", body)
		}
		if m.Subject != nil && m.Subject.Digest != subject || m.Subject == nil && !tagged {
			t.Fatalf("accepted without the subject: %s", body)
		}
	})
}
