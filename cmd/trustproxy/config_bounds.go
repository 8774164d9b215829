package main

import "fmt"

// byteSize is a non-negative byte count written as a number or a string
// like "8GiB" (the upstream bounds maxBlobBytes and minBytesPerSecond).
type byteSize int64

func (b *byteSize) UnmarshalJSON(raw []byte) error {
	n, err := parseSize(raw)
	if err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("must not be negative")
	}
	*b = byteSize(n)
	return nil
}
