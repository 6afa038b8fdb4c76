package topology

import (
	"fmt"
	"slices"
	"strings"
)

// E2E says what the e2e suite (package e2e) must run on a topology.
type E2E struct {
	// Require lists Ginkgo labels (as in Label("failover")): a run of the
	// whole suite on this topology must run, pass or fail, at least one
	// spec carrying each. A spec that is skipped instead (the topology
	// lacks what it needs, a BeforeAll skipped it) does not count.
	Require []string `yaml:"require,omitempty"`
}

// IsZero lets omitempty drop an empty e2e block.
func (e E2E) IsZero() bool { return len(e.Require) == 0 }

// labelForbidden holds the characters Ginkgo does not allow in a label:
// they are the operators of its label filter.
const labelForbidden = "&|!,()/"

// SpecOutcome is how one spec of an e2e run ended, as the required-spec
// check sees it.
type SpecOutcome struct {
	Name   string
	Labels []string
	// Ran is true when the spec ran to a verdict: passed or failed (a
	// timeout, a panic or an interrupt is a failure, so it ran too).
	Ran bool
	// State is the spec's state ("skipped", "pending"); Why says why it
	// did not run.
	State string
	Why   string
}

// NotRun is a required label that no spec of the run ran: the specs that
// carry it, none of which ran (none at all if no spec carries it).
type NotRun struct {
	Label string
	Specs []SpecOutcome
}

// String is "label: spec (state: why); spec (state: why)", one line.
func (n NotRun) String() string {
	if len(n.Specs) == 0 {
		return n.Label + ": no spec carries this label"
	}
	parts := make([]string, len(n.Specs))
	for i, s := range n.Specs {
		why := oneLine(s.Why)
		if why == "" {
			why = "no reason given"
		}
		parts[i] = fmt.Sprintf("%s (%s: %s)", s.Name, s.State, why)
	}
	return n.Label + ": " + strings.Join(parts, "; ")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Missing returns, in the order Require lists them, the required labels
// that no spec in specs ran.
func (e E2E) Missing(specs []SpecOutcome) []NotRun {
	var missing []NotRun
	for _, label := range e.Require {
		var carriers []SpecOutcome
		ran := false
		for _, s := range specs {
			if slices.Contains(s.Labels, label) {
				carriers = append(carriers, s)
				ran = ran || s.Ran
			}
		}
		if !ran {
			missing = append(missing, NotRun{Label: label, Specs: carriers})
		}
	}
	return missing
}

// e2e checks the e2e block: every required label is a Ginkgo label, once.
func (v *validator) e2e() {
	first := map[string]string{}
	for i, label := range v.t.E2E.Require {
		path := fmt.Sprintf("e2e.require[%d]", i)
		switch {
		case strings.TrimSpace(label) == "":
			v.errorf(path, "empty label (expected a Ginkgo label of the e2e suite, such as failover)")
			continue
		case strings.TrimSpace(label) != label:
			v.errorf(path, "%q has leading or trailing spaces (Ginkgo trims them from labels)", label)
		case strings.ContainsAny(label, labelForbidden):
			v.errorf(path, "%q is not a Ginkgo label (a label cannot contain any of %s)", label, labelForbidden)
		}
		if at, dup := first[label]; dup {
			v.errorf(path, "duplicate label %q (first listed at line %d)", label, v.t.lineOf(at))
			continue
		}
		first[label] = path
	}
}
