package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/swarmlab/swarmlab/lab/provider"
)

// leftoverer is implemented by the providers that can say what of a lab is
// left on the machines they manage (docker: by label on this machine's
// engine; ssh: on the lab's hosts).
type leftoverer interface {
	// Leftovers describes each thing of lab that is left; empty: nothing.
	Leftovers(ctx context.Context, lab string) ([]string, error)
}

// Leftovers lists what is left of the lab, one entry a thing, as its
// provider sees it, and its state on this machine (secrets, the record of
// a lab that is not made of containers here). After Down it is empty;
// that is how tests check that nothing of a lab outlives it, whatever
// provider made it.
func (l *Lab) Leftovers(ctx context.Context) ([]string, error) {
	return leftovers(ctx, l.prov, l.name)
}

// Leftovers lists what is left of the lab called name, as Lab.Leftovers
// does, asking the provider its record names, else docker. A lab whose
// record is gone (an ssh lab after down) is looked for on this machine
// only: for its hosts, use Lab.Leftovers on the lab's handle.
func Leftovers(ctx context.Context, name string) ([]string, error) {
	o, err := find(ctx, name, Options{})
	if err != nil {
		return nil, err
	}
	defer o.close()
	return leftovers(ctx, o.p, name)
}

func leftovers(ctx context.Context, p provider.Provider, name string) ([]string, error) {
	lo, ok := p.(leftoverer)
	if !ok {
		return nil, fmt.Errorf("the %s provider cannot say what is left of lab %s", p.Name(), name)
	}
	left, err := lo.Leftovers(ctx, name)
	if err != nil {
		return nil, err
	}
	dir := StateDir(name)
	if _, err := os.Stat(dir); err == nil {
		left = append(left, "state directory "+dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return left, nil
}
