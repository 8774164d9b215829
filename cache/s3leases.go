package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/request"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/s3"
	s3driver "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"
)

// DefaultLeaseTTL is how long a download lease lives without renewal: a
// replica killed mid-download delays the others by at most this much.
const DefaultLeaseTTL = 30 * time.Second

// S3Leases are download leases kept as small objects in the cache's own S3
// bucket, taken with conditional writes: a PutObject with If-None-Match: *
// creates the lease only if nobody holds it; renewing and taking over an
// expired lease are PutObjects with If-Match on the ETag last seen, so of
// two replicas racing exactly one wins. Lease bodies carry an expiry in the
// writer's wall clock, so replicas need synchronised clocks (NTP), as any
// Kubernetes node has.
type S3Leases struct {
	api    *s3.S3
	bucket string
	prefix string // object key prefix, under the driver's rootdirectory
	holder string
	ttl    time.Duration
	now    func() time.Time
}

// leaseBody is a lease object's content.
type leaseBody struct {
	Holder  string `json:"holder"`
	Expires int64  `json:"expiresUnixMilli"`
}

// NewS3Leases builds leases for the bucket an "s3" storage driver made from
// params uses (the same parameters: accesskey, secretkey, sessiontoken,
// region, regionendpoint, forcepathstyle, secure, skipverify, bucket), with
// lease objects under the driver's rootdirectory at /leases.
func NewS3Leases(d *s3driver.Driver, params map[string]any, ttl time.Duration, now func() time.Time) (*S3Leases, error) {
	str := func(k string) string { s, _ := params[k].(string); return s }
	boolean := func(k string, def bool) (bool, error) {
		switch v := params[k].(type) {
		case nil:
			return def, nil
		case bool:
			return v, nil
		case string:
			return strconv.ParseBool(v)
		}
		return false, fmt.Errorf("%s: want a boolean", k)
	}
	cfg := aws.NewConfig().WithRegion(str("region"))
	if ak, sk := str("accesskey"), str("secretkey"); ak != "" && sk != "" {
		cfg.WithCredentials(credentials.NewStaticCredentials(ak, sk, str("sessiontoken")))
	}
	if ep := str("regionendpoint"); ep != "" {
		cfg.WithEndpoint(ep)
	}
	pathStyle, err := boolean("forcepathstyle", false)
	if err != nil {
		return nil, err
	}
	secure, err := boolean("secure", true)
	if err != nil {
		return nil, err
	}
	skipVerify, err := boolean("skipverify", false)
	if err != nil {
		return nil, err
	}
	cfg.WithS3ForcePathStyle(pathStyle).WithDisableSSL(!secure)
	if skipVerify {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the operator asked for it, as for the driver
		cfg.WithHTTPClient(&http.Client{Transport: tr})
	}
	sess, err := session.NewSession(cfg)
	if err != nil {
		return nil, fmt.Errorf("s3 leases: session: %w", err)
	}
	if str("bucket") == "" {
		return nil, errors.New("s3 leases: no bucket")
	}
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	if now == nil {
		now = time.Now
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("s3 leases: holder id: %w", err)
	}
	return &S3Leases{api: s3.New(sess), bucket: str("bucket"), prefix: d.S3BucketKey("/leases"),
		holder: hex.EncodeToString(id[:]), ttl: ttl, now: now}, nil
}

// TTL implements DownloadLeases.
func (l *S3Leases) TTL() time.Duration { return l.ttl }

// Acquire implements DownloadLeases.
func (l *S3Leases) Acquire(ctx context.Context, name string) (Lease, error) {
	key := l.prefix + "/" + name
	etag, err := l.put(ctx, key, "If-None-Match", "*")
	if err == nil {
		return &s3Lease{l: l, key: key, etag: etag}, nil
	}
	if !conditionFailed(err) {
		return nil, fmt.Errorf("acquire lease %s: %w", key, err)
	}
	// Held: take it over only once it expired.
	out, err := l.api.GetObjectWithContext(ctx, &s3.GetObjectInput{Bucket: &l.bucket, Key: &key})
	if err != nil {
		if isNoSuchKey(err) {
			return nil, ErrLeaseHeld // released meanwhile: the caller looks again
		}
		return nil, fmt.Errorf("read lease %s: %w", key, err)
	}
	b, rerr := io.ReadAll(io.LimitReader(out.Body, 4096))
	out.Body.Close()
	if rerr != nil {
		return nil, fmt.Errorf("read lease %s: %w", key, rerr)
	}
	var body leaseBody
	if json.Unmarshal(b, &body) == nil && l.now().UnixMilli() < body.Expires {
		return nil, ErrLeaseHeld
	}
	etag, err = l.put(ctx, key, "If-Match", aws.StringValue(out.ETag))
	if err != nil {
		if conditionFailed(err) {
			return nil, ErrLeaseHeld // another replica took it over first
		}
		return nil, fmt.Errorf("take over expired lease %s: %w", key, err)
	}
	return &s3Lease{l: l, key: key, etag: etag}, nil
}

// put writes a fresh lease body under one precondition header.
func (l *S3Leases) put(ctx context.Context, key, header, value string) (string, error) {
	b, err := json.Marshal(leaseBody{Holder: l.holder, Expires: l.now().Add(l.ttl).UnixMilli()})
	if err != nil {
		return "", err
	}
	out, err := l.api.PutObjectWithContext(ctx, &s3.PutObjectInput{
		Bucket: &l.bucket, Key: &key, Body: bytes.NewReader(b), ContentType: aws.String("application/json"),
	}, request.WithSetRequestHeaders(map[string]string{header: value}))
	if err != nil {
		return "", err
	}
	return aws.StringValue(out.ETag), nil
}

type s3Lease struct {
	l    *S3Leases
	key  string
	etag string
}

func (s *s3Lease) Renew(ctx context.Context) error {
	etag, err := s.l.put(ctx, s.key, "If-Match", s.etag)
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", s.key, err)
	}
	s.etag = etag
	return nil
}

func (s *s3Lease) Release(ctx context.Context) error {
	_, err := s.l.api.DeleteObjectWithContext(ctx, &s3.DeleteObjectInput{Bucket: &s.l.bucket, Key: &s.key},
		request.WithSetRequestHeaders(map[string]string{"If-Match": s.etag}))
	if err != nil && !isNoSuchKey(err) && !conditionFailed(err) {
		return fmt.Errorf("release lease %s: %w", s.key, err)
	}
	return nil
}

// conditionFailed: 412 PreconditionFailed, or 409 ConditionalRequestConflict
// when S3 saw a concurrent conditional write of the same key.
func conditionFailed(err error) bool {
	var rf awserr.RequestFailure
	if errors.As(err, &rf) {
		return rf.StatusCode() == http.StatusPreconditionFailed || rf.StatusCode() == http.StatusConflict
	}
	return false
}

func isNoSuchKey(err error) bool {
	var rf awserr.RequestFailure
	if errors.As(err, &rf) {
		return rf.StatusCode() == http.StatusNotFound
	}
	return false
}
