package lab

import (
	"context"
	"errors"
	"sync"
)

// eachAtOnce runs fn(0) … fn(n-1), at most limit at a time (limit ≤ 0: all
// at once), and returns every error, joined: a bring-up that fails in two
// places says both. Once ctx ends, calls not yet started are not made and
// report ctx's error.
func eachAtOnce(ctx context.Context, n, limit int, fn func(i int) error) error {
	if limit <= 0 || limit > n {
		limit = n
	}
	sem := make(chan struct{}, max(1, limit))
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			// A free slot and an ended ctx are both ready: select picks
			// either, so ctx is looked at again.
			if err := ctx.Err(); err != nil {
				errs[i] = err
				return
			}
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
