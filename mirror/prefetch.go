package mirror

import (
	"context"
	"io"
	"sync"
)

// blobsAhead is how many blob bodies a sequential sink (a tar stream) has
// open ahead of the one it writes: opening one starts the proxy's upstream
// download (detached from the request, spooled while it waits), so a cold
// proxy fetches the next layers while the tar takes the current one.
const blobsAhead = 3

type openedBlob struct {
	rc  io.ReadCloser
	err error
}

// copyBlobsInOrder writes the queued blobs one after another, each body
// opened up to blobsAhead blobs early.
func (x *exporter) copyBlobsInOrder(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opened := make([]chan openedBlob, len(x.blobs))
	for i := range opened {
		opened[i] = make(chan openedBlob, 1)
	}
	slots := make(chan struct{}, blobsAhead)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, b := range x.blobs {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			rc, err := x.o.Source.Blob(ctx, b.subj.Upstream, b.subj.Repository, b.desc.Digest)
			opened[i] <- openedBlob{rc, err}
		}
	}()
	// On the way out (an error, or done), stop opening and close every
	// body opened but not written.
	defer func() {
		cancel()
		wg.Wait()
		for _, ch := range opened {
			select {
			case o := <-ch:
				if o.rc != nil {
					o.rc.Close()
				}
			default:
			}
		}
	}()
	for i, b := range x.blobs {
		var o openedBlob
		select {
		case o = <-opened[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if o.err != nil {
			return o.err
		}
		err := x.writeBlob(b.desc, o.rc)
		o.rc.Close()
		<-slots
		if err != nil {
			return err
		}
	}
	return nil
}
