package lab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/topology"
)

// Summary is what `swarmlab list` says of one lab.
type Summary struct {
	Name string `json:"name"`
	// Provider is the provider type its record names ("docker", "ssh").
	Provider string `json:"provider"`
	// Nodes counts its machines: as its provider opened them, else as its
	// record's topology lists them.
	Nodes int `json:"nodes"`
	// Engine is the server version of the engine of the first running
	// node that answered ("20.10.24"); empty when none did.
	Engine string `json:"engine,omitempty"`
	// Created is when the lab was recorded (Record.Created); zero when
	// unknown.
	Created time.Time `json:"created,omitzero"`
	// Error says why the lab could not be opened (its engine, its hosts),
	// or why no node's engine answered; the other fields are then what
	// its record says.
	Error string `json:"error,omitempty"`
}

// listTimeout bounds what List spends on one lab: opening it and asking one
// node's engine its version.
const listTimeout = 10 * time.Second

// List describes every lab (Labs), each as its record and one of its
// engines say, at once, in name order. A lab that cannot be opened, or
// none of whose engines answers, is listed all the same, with the reason
// in its Error. opts.Provider and opts.Host are used as by OpenWith.
func List(ctx context.Context, opts Options) ([]Summary, error) {
	names, err := LabsWith(ctx, opts)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, len(names))
	_ = eachAtOnce(ctx, len(names), 0, func(i int) error {
		lctx, cancel := context.WithTimeout(ctx, listTimeout)
		defer cancel()
		out[i] = summarize(lctx, names[i], opts)
		return nil
	})
	return out, ctx.Err()
}

// summarize describes lab name: first from its record, then from its
// nodes once it is open.
func summarize(ctx context.Context, name string, opts Options) Summary {
	s := Summary{Name: name, Provider: topology.ProviderDocker}
	rec, err := readRecord(name)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	if rec != nil {
		s.Provider, s.Created = rec.Provider, rec.Created
		if rec.Topology != nil {
			s.Nodes = len(rec.Topology.Nodes)
		}
	}
	l, err := OpenWith(ctx, name, opts)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	defer l.Close()
	s.Nodes = len(l.cluster.Nodes())
	s.Engine, err = l.engineVersion(ctx)
	if err != nil {
		s.Error = err.Error()
	}
	return s
}

// engineVersion is the server version of the first running node whose
// engine answers.
func (l *Lab) engineVersion(ctx context.Context) (string, error) {
	var tried []string
	for _, n := range l.cluster.Nodes() {
		if !n.State().Running() {
			tried = append(tried, fmt.Sprintf("%s is %s", n.Name(), n.State()))
			continue
		}
		c, err := n.Engine(ctx)
		if err == nil {
			var v client.ServerVersionResult
			if v, err = c.ServerVersion(ctx, client.ServerVersionOptions{}); err == nil && v.Version != "" {
				return v.Version, nil
			}
		}
		if err == nil {
			err = fmt.Errorf("no version in its answer")
		}
		tried = append(tried, fmt.Sprintf("%s: %v", n.Name(), err))
	}
	if len(tried) == 0 {
		return "", fmt.Errorf("lab %s has no nodes", l.name)
	}
	return "", fmt.Errorf("no node's engine told its version (%s)", joinShort(tried))
}

// joinShort joins what was tried with "; ", keeping the first three.
func joinShort(parts []string) string {
	if len(parts) > 3 {
		parts = append(parts[:3:3], fmt.Sprintf("and %d more", len(parts)-3))
	}
	return strings.Join(parts, "; ")
}
