//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/swarmlab/swarmlab/lab/probe"
)

// Every run writes, into its own directory under the report directory:
//   junit.xml    Ginkgo's JUnit report
//   report.json  what the run measured (runReport)
//   failed/<spec>/  on a failed spec: the lab's logs bundle (lab.ExportLogs:
//                each node's dockerd log and events, each task's log, the
//                swarm's nodes, services and tasks), its status and HAProxy's stats

// runReport is report.json.
type runReport struct {
	Topology     string         `json:"topology"`
	TopologyFile string         `json:"topologyFile,omitempty"`
	Lab          string         `json:"lab,omitempty"`
	Kept         bool           `json:"kept"`
	Started      time.Time      `json:"started"`
	Seconds      float64        `json:"seconds"`
	Succeeded    bool           `json:"succeeded"`
	DryRun       bool           `json:"dryRun,omitempty"`
	Seed         int64          `json:"seed"`
	LabelFilter  string         `json:"labelFilter,omitempty"`
	Counts       map[string]int `json:"counts"`
	BringUp      *bringUpReport `json:"bringUp,omitempty"`
	APIVersions  *apiReport     `json:"apiVersions,omitempty"`
	Engine       *engineReport  `json:"engine,omitempty"`
	Ingress      *ingressReport `json:"ingress,omitempty"`
	Variants     []variant      `json:"variants,omitempty"`
	Specs        []specReport   `json:"specs"`
	// Problems are failures outside specs: bring-up, teardown, leftovers.
	Problems []string `json:"problems,omitempty"`
}

type bringUpReport struct {
	Seconds float64   `json:"seconds"`
	Steps   []seconds `json:"steps"`
	// StackSeconds is how long the e2e stack took to build, deploy and
	// answer through the edge, after Up.
	StackSeconds float64 `json:"e2eStackSeconds"`
	// FirstAttemptFailed is why the first bring-up failed, when the
	// suite had to try twice.
	FirstAttemptFailed string `json:"firstAttemptFailed,omitempty"`
}

type apiReport struct {
	Host  string            `json:"host"`
	Nodes map[string]string `json:"nodes"`
}

// engineReport is the Docker engine the nodes run: the topology's pin (after
// SWARMLAB_ENGINE) and each node's version.
type engineReport struct {
	Pinned  string            `json:"pinned,omitempty"`
	FromEnv bool              `json:"fromEnv,omitempty"` // set by SWARMLAB_ENGINE
	Nodes   map[string]string `json:"nodes"`
}

type ingressReport struct {
	Mode string `json:"mode"`
	Why  string `json:"why"`
}

// variant is one way of checking a promise that only some machines can
// run (the routing mesh needs IPVS): whether it ran here, and why not.
type variant struct {
	Name  string `json:"name"`
	Spec  string `json:"spec"`
	Ran   bool   `json:"ran"`
	State string `json:"state"`
	Why   string `json:"why,omitempty"`
}

type seconds struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

type specReport struct {
	Name    string   `json:"name"`
	Labels  []string `json:"labels,omitempty"`
	State   string   `json:"state"`
	Seconds float64  `json:"seconds"`
	// Reason says why a spec was skipped, or how it failed.
	Reason string `json:"reason,omitempty"`
	*specRecord
}

// specRecord is what one spec measured.
type specRecord struct {
	Timings     []seconds     `json:"timings,omitempty"`
	Faults      []faultRecord `json:"faults,omitempty"`
	Notes       []string      `json:"notes,omitempty"`
	Diagnostics string        `json:"diagnostics,omitempty"`
}

// faultRecord is one fault: how long the swarm took to notice it and to
// recover, and what the app's users saw meanwhile.
type faultRecord struct {
	Fault string `json:"fault"`
	// DetectedAs says what noticing meant ("node Down"); DetectedSeconds is
	// from the fault to then.
	DetectedAs      string   `json:"detectedAs,omitempty"`
	DetectedSeconds *float64 `json:"detectedSeconds,omitempty"`
	// RecoveredAs says what recovery meant ("3/3 running elsewhere").
	RecoveredAs      string   `json:"recoveredAs,omitempty"`
	RecoveredSeconds *float64 `json:"recoveredSeconds,omitempty"`
	// Requests made through the edge from the fault until recovery, and
	// how many failed; FailedBeforeDetection counts those that failed
	// before the swarm noticed.
	Requests              int            `json:"requests"`
	Failed                int            `json:"failed"`
	FailedBeforeDetection int            `json:"failedBeforeDetection"`
	Errors                map[string]int `json:"errors,omitempty"`
	MaxLatencySeconds     float64        `json:"maxLatencySeconds"`
	P99LatencySeconds     float64        `json:"p99LatencySeconds"`
	// EdgeRetries and EdgeRedispatches are requests HAProxy replayed,
	// unseen by the client, over the same period; absent when the edge
	// itself was replaced meanwhile (its counters started again).
	EdgeRetries      *int `json:"edgeRetries,omitempty"`
	EdgeRedispatches *int `json:"edgeRedispatches,omitempty"`
}

// run holds what the suite knows about this run.
var run = struct {
	sync.Mutex
	started  time.Time
	dir      string
	records  map[string]*specRecord
	bringUp  *bringUpReport
	problems []string
	// finished holds the reports of the specs that have ended, and
	// current the one running, for the report written when a signal cuts
	// the run short.
	finished []types.SpecReport
	current  *types.SpecReport
}{started: time.Now(), records: map[string]*specRecord{}}

// writing serialises report writers: the interrupt hook and Ginkgo's own
// ReportAfterSuite may both run when the run is cut short.
var writing sync.Mutex

var _ = ReportBeforeEach(func(sr SpecReport) {
	if sr.State == types.SpecStateSkipped { // not selected: it never runs
		return
	}
	if sr.StartTime.IsZero() {
		sr.StartTime = time.Now()
	}
	run.Lock()
	defer run.Unlock()
	run.current = &sr
})

var _ = ReportAfterEach(func(sr SpecReport) {
	run.Lock()
	defer run.Unlock()
	run.finished = append(run.finished, sr)
	run.current = nil
})

// signalName is "SIGINT" for Ctrl-C rather than Go's "interrupt".
func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		switch s {
		case syscall.SIGINT:
			return "SIGINT"
		case syscall.SIGTERM:
			return "SIGTERM"
		}
	}
	return sig.String()
}

// interrupted is the report of the spec a signal cut short: it counts as
// neither passed nor skipped, and says why it ended.
func interrupted(sr types.SpecReport, sig os.Signal, at time.Time) types.SpecReport {
	sr.State = types.SpecStateInterrupted
	sr.EndTime, sr.RunTime = at, at.Sub(sr.StartTime)
	sr.Failure = types.Failure{
		Message:         fmt.Sprintf("interrupted by %s after %.1fs: the lab was removed while this spec ran", signalName(sig), sr.RunTime.Seconds()),
		FailureNodeType: types.NodeTypeIt,
	}
	return sr
}

// writeInterruptedReport writes the reports of a run a signal cut short,
// from the specs that had ended; labtest's signal handler calls it before
// it removes the lab and exits.
func writeInterruptedReport(sig os.Signal) {
	run.Lock()
	now := time.Now()
	specs := append([]types.SpecReport(nil), run.finished...)
	running := "no spec was running"
	if run.current != nil {
		specs = append(specs, interrupted(*run.current, sig, now))
		running = fmt.Sprintf("the one running (%s) is marked interrupted", run.current.FullText())
	}
	run.problems = append(run.problems, fmt.Sprintf("interrupted by %s: the lab was removed and the run ended early; the %d specs that had ended are here (selected or not), %s, and those after it are not", signalName(sig), len(run.finished), running))
	started := run.started
	run.Unlock()
	writeReports(Report{
		SuitePath: "e2e", SuiteDescription: "swarmlab e2e (interrupted)",
		StartTime: started, EndTime: now, RunTime: now.Sub(started),
		SuiteSucceeded: false, SpecReports: specs,
	})
}

// reportDir is this run's directory: $SWARMLAB_REPORT_DIR or
// .cache/e2e/<topology>/, then the run's start time.
func reportDir() string {
	run.Lock()
	defer run.Unlock()
	if run.dir != "" {
		return run.dir
	}
	base := os.Getenv(envReportDir)
	if base == "" {
		base = filepath.Join(moduleRoot(), ".cache", "e2e", topologyLabel())
	}
	run.dir = filepath.Join(base, run.started.Format("20060102-150405"))
	return run.dir
}

// topologyLabel names the topology even before it is loaded.
func topologyLabel() string {
	if sut != nil {
		return sut.name
	}
	v := os.Getenv(envTopology)
	if v == "" {
		return defaultTopology
	}
	return strings.TrimSuffix(strings.TrimSuffix(filepath.Base(v), ".yaml"), ".yml")
}

// record returns the current spec's record.
func record() *specRecord {
	key := CurrentSpecReport().FullText()
	run.Lock()
	defer run.Unlock()
	r, ok := run.records[key]
	if !ok {
		r = &specRecord{}
		run.records[key] = r
	}
	return r
}

func secs(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// timing records how long something took, in the report and the spec's
// output.
func (r *specRecord) timing(name string, d time.Duration) {
	AddReportEntry(name, fmt.Sprintf("%.2fs", d.Seconds()))
	run.Lock()
	defer run.Unlock()
	r.Timings = append(r.Timings, seconds{Name: name, Seconds: secs(d)})
}

func (r *specRecord) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	AddReportEntry("note", msg)
	run.Lock()
	defer run.Unlock()
	r.Notes = append(r.Notes, msg)
}

// faultRun times one fault while traffic runs through the edge.
type faultRun struct {
	rec      faultRecord
	start    time.Time
	detect   time.Time
	traffic  *probe.Traffic
	edge     edgeStatsNow
	edgeURL  string
	edgeRead bool
}

// beginFault starts the clock on a fault about to be applied.
func beginFault(ctx context.Context, name string, traffic *probe.Traffic) *faultRun {
	f := &faultRun{rec: faultRecord{Fault: name}, traffic: traffic}
	if traffic != nil {
		f.edge, f.edgeRead = sut.edgeCounters(ctx)
		f.edgeURL = sut.statsURL
	}
	f.start = time.Now()
	return f
}

// detected marks the moment the swarm noticed the fault.
func (f *faultRun) detected(as string) time.Duration {
	f.detect = time.Now()
	d := f.detect.Sub(f.start)
	f.rec.DetectedAs, f.rec.DetectedSeconds = as, ptr(secs(d))
	return d
}

// recovered marks the moment the service was whole again.
func (f *faultRun) recovered(as string) time.Duration {
	d := time.Since(f.start)
	f.rec.RecoveredAs, f.rec.RecoveredSeconds = as, ptr(secs(d))
	return d
}

// end records the fault with the traffic from its start until now, and
// returns that traffic: every request started by now, once it has ended
// (those still in flight are waited for, at most requestTimeout).
func (f *faultRun) end(ctx context.Context) probe.Summary {
	var sum probe.Summary
	if f.traffic != nil {
		sum = f.traffic.SettledSince(f.start)
		f.rec.Requests, f.rec.Failed = sum.Requests, sum.Failed
		f.rec.MaxLatencySeconds, f.rec.P99LatencySeconds = secs(sum.MaxLatency), secs(sum.P99Latency)
		if len(sum.Errors) > 0 {
			f.rec.Errors = sum.Errors
		}
		if !f.detect.IsZero() {
			for _, o := range sum.Outcomes {
				if !o.OK() && o.Start.Before(f.detect) {
					f.rec.FailedBeforeDetection++
				}
			}
		}
		after, ok := sut.edgeCounters(ctx)
		if ok && f.edgeRead && sut.statsURL == f.edgeURL && after.Retries >= f.edge.Retries && after.Redispatches >= f.edge.Redispatches {
			f.rec.EdgeRetries, f.rec.EdgeRedispatches = ptr(after.Retries-f.edge.Retries), ptr(after.Redispatches-f.edge.Redispatches)
		}
	}
	line := f.rec.Fault
	if f.rec.DetectedSeconds != nil {
		line += fmt.Sprintf("; %s after %.2fs", f.rec.DetectedAs, *f.rec.DetectedSeconds)
	}
	if f.rec.RecoveredSeconds != nil {
		line += fmt.Sprintf("; %s after %.2fs", f.rec.RecoveredAs, *f.rec.RecoveredSeconds)
	}
	if f.traffic != nil {
		line += "; through the edge: " + sum.String()
		if f.rec.EdgeRetries != nil {
			line += fmt.Sprintf("; HAProxy retried %d, redispatched %d", *f.rec.EdgeRetries, *f.rec.EdgeRedispatches)
		} else {
			line += "; HAProxy's counters unknown (the edge was replaced)"
		}
	}
	AddReportEntry("fault", line)
	r := record()
	run.Lock()
	r.Faults = append(r.Faults, f.rec)
	run.Unlock()
	return sum
}

func ptr[T any](v T) *T { return &v }

// saveDiagnostics writes what explains a failure next to the report: the
// lab's logs bundle (lab.ExportLogs, what swarmlab export logs writes:
// every node's dockerd log and events, every task's log, the swarm's
// nodes, services and tasks), the swarm status, HAProxy stats.
func saveDiagnostics(ctx context.Context, spec string) string {
	dir := filepath.Join(reportDir(), "failed", slug(spec))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error()
	}
	write := func(name string, fill func(f *os.File) error) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return
		}
		defer f.Close()
		if err := fill(f); err != nil {
			fmt.Fprintf(f, "\n[swarmlab e2e: could not collect this: %v]\n", err)
		}
	}
	if err := sut.lab.ExportLogs(ctx, dir); err != nil {
		GinkgoWriter.Printf("logs bundle of the failure: %v (see %s)\n", err, filepath.Join(dir, "README.txt"))
	}
	write("swarm-status.json", func(f *os.File) error {
		st, err := sut.lab.Status(ctx)
		if err != nil {
			return err
		}
		e := json.NewEncoder(f)
		e.SetIndent("", "  ")
		return e.Encode(st)
	})
	write("edge-stats.txt", func(f *os.File) error {
		st, err := sut.edgeStatsRead(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(f, "HAProxy backend %s at %s: %d retries, %d redispatches\n", edgeBackend, sut.statsURL, st.Retries, st.Redispatches)
		for _, sv := range st.Servers {
			fmt.Fprintf(f, "%-8s %-22s %s\n", sv.Name, sv.Addr, sv.Status)
		}
		return nil
	})
	return dir
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

func slug(s string) string {
	s = strings.Trim(nonWord.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// writeReports writes junit.xml and report.json for the suite's report,
// and prints where they are and every spec that did not run, with why.
func writeReports(report Report) {
	writing.Lock()
	defer writing.Unlock()
	dir := reportDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot write reports: %v\n", err)
		return
	}
	junit := filepath.Join(dir, "junit.xml")
	if err := reporters.GenerateJUnitReport(report, junit); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: writing %s: %v\n", junit, err)
	}

	run.Lock()
	rr := runReport{
		Topology: topologyLabel(), Kept: keepLab(),
		Started: report.StartTime, Seconds: secs(report.RunTime), Succeeded: report.SuiteSucceeded,
		Seed: report.SuiteConfig.RandomSeed, LabelFilter: report.SuiteConfig.LabelFilter,
		DryRun: report.SuiteConfig.DryRun, Counts: map[string]int{}, BringUp: run.bringUp, Problems: run.problems,
	}
	records := run.records
	run.Unlock()
	if sut != nil {
		rr.TopologyFile, rr.Lab = sut.topo.Source(), sut.lab.Name()
		rr.APIVersions = &apiReport{Host: sut.lab.Info().HostAPI, Nodes: sut.lab.Info().NodeAPI}
		rr.Ingress = &ingressReport{Mode: sut.lab.Info().Ingress, Why: sut.lab.Info().IngressWhy}
		rr.Engine = &engineReport{Pinned: sut.topo.Engine(), FromEnv: engineFromEnv() != "", Nodes: sut.lab.Info().NodeEngine}
	}
	skipReason := beforeAllSkips(report.SpecReports)
	var notRun []string
	for _, sr := range report.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt {
			if sr.Failed() {
				rr.Problems = append(rr.Problems, fmt.Sprintf("%s: %s", sr.LeafNodeType, sr.FailureMessage()))
			}
			continue
		}
		state, reason := sr.State.String(), ""
		switch {
		case sr.State == types.SpecStateSkipped && sr.Failure.Message == "":
			state, reason = "not selected", "not selected by the label filter or focus"
			if topologyFilter != "" && report.SuiteConfig.LabelFilter == topologyFilter {
				reason = fmt.Sprintf("not among the labels %s requires (e2e.require: %s); run it here with -ginkgo.label-filter", topologyLabel(), topologyFilter)
			}
		case sr.State == types.SpecStateSkipped:
			reason = skipReason.of(sr)
		case sr.Failed():
			reason = sr.FailureMessage()
		}
		rr.Counts[state]++
		name := sr.FullText()
		rr.Specs = append(rr.Specs, specReport{
			Name: name, Labels: sr.Labels(), State: state, Seconds: secs(sr.RunTime),
			Reason: reason, specRecord: records[name],
		})
		if sr.State != types.SpecStatePassed && !sr.Failed() {
			notRun = append(notRun, fmt.Sprintf("%s: %s", name, reason))
		}
		for _, c := range sr.ContainerHierarchyTexts {
			if v, ok := strings.CutSuffix(c, " variant"); ok {
				ran := sr.State == types.SpecStatePassed || sr.Failed()
				why := reason
				if ran {
					why = ""
				}
				rr.Variants = append(rr.Variants, variant{Name: v, Spec: name, Ran: ran, State: state, Why: why})
			}
		}
	}
	sort.SliceStable(rr.Specs, func(i, j int) bool { return rr.Specs[i].Name < rr.Specs[j].Name })

	path := filepath.Join(dir, "report.json")
	data, _ := json.MarshalIndent(rr, "", "  ")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: writing %s: %v\n", path, err)
	}
	fmt.Printf("\ne2e reports: %s (JSON), %s (JUnit)\n", path, junit)
	for _, line := range notRun {
		fmt.Printf("NOT RUN (not a pass): %s\n", line)
	}
}

// skipReasons holds, per Ordered container, the reason its BeforeAll gave
// for skipping it.
type skipReasons map[string]string

// beforeAllSkips collects them: a Skip in BeforeAll skips the whole
// Ordered container, but only its first spec carries the reason.
func beforeAllSkips(reports types.SpecReports) skipReasons {
	r := skipReasons{}
	for _, sr := range reports {
		if sr.State == types.SpecStateSkipped && sr.Failure.Message != "" && sr.Failure.Message != skippedInBeforeAll {
			key := strings.Join(sr.ContainerHierarchyTexts, "/")
			if _, ok := r[key]; !ok {
				r[key] = sr.Failure.Message
			}
		}
	}
	return r
}

// of is sr's failure message, with the BeforeAll's reason in place of
// Ginkgo's "skipped because Skip() was called in BeforeAll".
func (r skipReasons) of(sr types.SpecReport) string {
	if why, ok := r[strings.Join(sr.ContainerHierarchyTexts, "/")]; ok && sr.Failure.Message == skippedInBeforeAll {
		return why
	}
	return sr.Failure.Message
}

// skippedInBeforeAll is Ginkgo's reason for the specs after the first of an
// Ordered container whose BeforeAll called Skip.
const skippedInBeforeAll = "Spec skipped because Skip() was called in BeforeAll"

func addProblem(format string, args ...any) {
	run.Lock()
	defer run.Unlock()
	run.problems = append(run.problems, fmt.Sprintf(format, args...))
}
