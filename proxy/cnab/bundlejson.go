package cnab

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// bundleDoc is the part of bundle.json the resolver cross-checks. It is
// read from the raw blob and never written back: the signature covers the
// blob's bytes, not any re-encoding of them.
type bundleDoc struct {
	InvocationImages []bundleImage          `json:"invocationImages"`
	Images           map[string]bundleImage `json:"images"`
}

// bundleImage mirrors cnab-go's BaseImage fields that pin an image.
type bundleImage struct {
	ImageType     string          `json:"imageType"`
	Image         string          `json:"image"`
	ContentDigest string          `json:"contentDigest"`
	Size          json.RawMessage `json:"size"`
	MediaType     string          `json:"mediaType"`
}

func parseBundleJSON(body []byte) (*bundleDoc, error) {
	if err := checkStrictJSON(body); err != nil {
		return nil, invalidf("bundle.json is not a well-formed JSON object: %v", err)
	}
	var b bundleDoc
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, invalidf("bundle.json: %v", err)
	}
	return &b, nil
}

// size returns the image's size field; 0 means absent, as in cnab-go
// (omitempty), where cnab-to-oci refuses to push such an image.
func (i bundleImage) size() (int64, error) {
	if len(i.Size) == 0 || string(i.Size) == "null" {
		return 0, nil
	}
	// Only a plain non-negative integer literal: cnab-go reads size as a
	// uint64, so "942", 9.4e2 or -1 would not mean the same thing to it.
	n, err := strconv.ParseInt(string(i.Size), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %s is not a non-negative integer", i.Size)
	}
	return n, nil
}
