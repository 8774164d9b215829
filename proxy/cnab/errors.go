package cnab

import (
	"errors"
	"fmt"
)

// ErrInvalid marks every refusal that is about the bundle's content (as
// opposed to a failed fetch): callers deny the bundle when errors.Is(err,
// ErrInvalid). The message names the image or the field that failed.
var ErrInvalid = errors.New("invalid CNAB bundle")

// ErrNotBundle is returned by ResolveReference when the reference names
// something other than a cnab-to-oci bundle (e.g. a plain image).
var ErrNotBundle = errors.New("not a CNAB bundle")

// ErrNotFound is what a Fetcher's error wraps when the registry does not
// have the manifest (404), as opposed to failing to answer.
var ErrNotFound = errors.New("not in the registry")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
