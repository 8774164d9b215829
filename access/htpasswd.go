package access

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/crypto/bcrypt"
)

// users checks passwords against bcrypt hashes from an htpasswd file.
// bcrypt costs tens of milliseconds by design, and registry clients send
// the same Basic credentials on every request, so a successful check is
// remembered (keyed by a hash of user and password) for a while.
type users struct {
	hashes map[string][]byte
	dummy  []byte
	ok     *lru.Cache[[sha256.Size]byte, time.Time]
	ttl    time.Duration
	now    func() time.Time
}

// loadHtpasswd reads "name:$2y$..." lines; only bcrypt hashes are accepted
// (htpasswd -B), as distribution does.
func loadHtpasswd(path string) (map[string][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	return parseHtpasswd(b)
}

func parseHtpasswd(b []byte) (map[string][]byte, error) {
	entries := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || name == "" || hash == "" {
			return nil, fmt.Errorf("htpasswd line %d: want name:bcrypt-hash", n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("htpasswd line %d (%s): only bcrypt hashes are supported (htpasswd -B): %w", n, name, err)
		}
		if _, dup := entries[name]; dup {
			return nil, fmt.Errorf("htpasswd line %d: user %q appears twice", n, name)
		}
		entries[name] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	return entries, nil
}

func newUsers(hashes map[string][]byte, ttl time.Duration, now func() time.Time) (*users, error) {
	dummy, err := bcrypt.GenerateFromPassword([]byte("trustproxy-dummy"), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	c, err := lru.New[[sha256.Size]byte, time.Time](4096)
	if err != nil {
		return nil, err
	}
	return &users{hashes: hashes, dummy: dummy, ok: c, ttl: ttl, now: now}, nil
}

// check reports whether password is the user's.
func (u *users) check(name, password string) bool {
	key := sha256.Sum256([]byte(name + "\x00" + password))
	if until, ok := u.ok.Get(key); ok && u.now().Before(until) {
		return true
	}
	hash, known := u.hashes[name]
	if !known {
		// Spend the same time as for a known user, so the answer's
		// timing does not tell which names exist.
		_ = bcrypt.CompareHashAndPassword(u.dummy, []byte(password))
		return false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	u.ok.Add(key, u.now().Add(u.ttl))
	return true
}
