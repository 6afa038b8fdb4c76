//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

// These run without a lab: go test -tags e2e -run TestSelection ./e2e.

// The label filter a topology sets from its e2e.require must keep the
// required-spec check on; a filter the user gives must turn it off.
// (Before, any filter turned the check off, so a topology's own default
// would have silenced it.)
func TestSelectionFromTheTopologyKeepsTheRequiredCheck(t *testing.T) {
	t.Setenv(envTopology, "vote-6")
	saved := topologyFilter
	defer func() { topologyFilter = saved }()

	got := defaultLabelFilter(types.SuiteConfig{})
	if got != "vote" || topologyFilter != "vote" {
		t.Fatalf("vote-6's default filter = %q (topologyFilter %q), want its e2e.require, %q", got, topologyFilter, "vote")
	}
	if why := userSelection(types.Report{SuiteConfig: types.SuiteConfig{LabelFilter: got}}); why != "" {
		t.Errorf("the topology's own filter counted as the user's selection: %s", why)
	}
	if why := userSelection(types.Report{SuiteConfig: types.SuiteConfig{LabelFilter: "failover"}}); !strings.Contains(why, "label filter failover") {
		t.Errorf("a user's filter did not turn the check off: %q", why)
	}
	if got := defaultLabelFilter(types.SuiteConfig{LabelFilter: "failover"}); got != "failover" {
		t.Errorf("the user's filter was replaced by %q", got)
	}
	if got := defaultLabelFilter(types.SuiteConfig{FocusStrings: []string{"Drain"}}); got != "" {
		t.Errorf("a focus got the topology's filter %q on top", got)
	}
}
