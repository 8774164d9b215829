//go:build tools

// Package tools pins modules that several packages use while they are being written, so that parallel work never races on go.mod.
package tools

import (
	_ "github.com/cnabio/cnab-to-oci/converter"
	_ "github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/factory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"
	_ "github.com/go-logr/zapr"
	_ "github.com/google/go-containerregistry/pkg/authn"
	_ "github.com/google/go-containerregistry/pkg/crane"
	_ "github.com/google/go-containerregistry/pkg/v1/random"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/in-toto/in-toto-golang/in_toto"
	_ "github.com/opencontainers/go-digest"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/secure-systems-lab/go-securesystemslib/signerverifier"
	_ "github.com/sigstore/sigstore/pkg/signature"
	_ "github.com/theupdateframework/go-tuf/v2/metadata/updater"
	_ "go.uber.org/zap"
	_ "sigs.k8s.io/yaml"
)
