//go:build e2e

package e2e

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
)

var _ = Describe("Scaling", Label("scaling"), func() {
	BeforeEach(func(ctx SpecContext) { sut.expectWhole(ctx) }, NodeTimeout(cleanupTimeout))

	It("runs as many tasks as asked, 1 then 5 then 2, and the edge follows, with 0 failed requests", func(ctx SpecContext) {
		traffic := sut.startTraffic()
		DeferCleanup(func(ctx context.Context) { sut.restore(ctx) }, NodeTimeout(cleanupTimeout))

		for _, n := range []uint64{1, 5, 2} {
			f := beginFault(ctx, fmt.Sprintf("scale %s to %d", echoService, n), traffic)
			sut.scale(ctx, echoService, n)
			waitFor(ctx, fmt.Sprintf("%s to run %d tasks", echoService, n), convergeTimeout, sut.tasksRunning(echoService, int(n), placement{}))
			f.detected(fmt.Sprintf("%d running", n))
			waitFor(ctx, fmt.Sprintf("the edge to answer from those %d tasks", n), edgeTimeout, sut.edgeServesAll())
			f.recovered(fmt.Sprintf("the edge answers from %d tasks", n))
			sum := f.end(ctx)
			By(fmt.Sprintf("checking every request succeeded while scaling to %d (a planned change)", n))
			expectNoFailures(sum, fmt.Sprintf("while scaling to %d", n))
		}
	}, SpecTimeout(specTimeout))
})
