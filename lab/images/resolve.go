package images

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"
)

// Resolve returns the local reference to use for img: its hashed tag, or for
// a standard image whose official version was pulled instead of built, the
// official name. It fails, naming the fix, when neither is there.
func Resolve(ctx context.Context, cli client.APIClient, img Image) (string, error) {
	ok, _, err := exists(ctx, cli, img.Ref())
	if err != nil || ok {
		return img.Ref(), err
	}
	if img.PullRef() != "" {
		if ok, _, err := exists(ctx, cli, img.PullRef()); err != nil || ok {
			return img.PullRef(), err
		}
	}
	return "", fmt.Errorf("image %s is not built (lab.Up builds the images a lab needs; scripts/bootstrap builds them all)", img.Ref())
}
