package workshop

import (
	"strings"
	"testing"
)

const samplePage = "<!-- workshop: group=services needs=invoices -->\n" + // 1
	"# Scale\n" + // 2
	"\n" + // 3
	"```sh setup\n" + // 4
	"scripts/swarmlab up\n" + // 5
	"```\n" + // 6
	"\n" + // 7
	"```sh\n" + // 8
	"docker service scale invoices_customers=3\n" + // 9
	"```\n" + // 10
	"It prints:\n" + // 11
	"```expect\n" + // 12
	"# converged\n" + // 13
	"^verify: Service .*converged\n" + // 14
	"! Error\n" + // 15
	"```\n" + // 16
	"```text\n" + // 17
	"sample output, not run\n" + // 18
	"```\n" + // 19
	"```sh\n" + // 20
	"docker node ls\n" + // 21
	"```\n" // 22

func TestParsePageReadsStepsSetupAndExpectations(t *testing.T) {
	p, err := ParsePage("p.md", []byte(samplePage))
	if err != nil {
		t.Fatal(err)
	}
	if p.Group != "services" || p.Topology != DefaultTopology || strings.Join(p.Needs, ",") != "invoices" {
		t.Errorf("header: group %q topology %q needs %v", p.Group, p.Topology, p.Needs)
	}
	if len(p.Setup) != 1 || p.Setup[0].Line != 4 || p.Setup[0].Script != "scripts/swarmlab up\n" {
		t.Errorf("setup = %+v", p.Setup)
	}
	if len(p.Steps) != 2 {
		t.Fatalf("steps = %+v", p.Steps)
	}
	s := p.Steps[0]
	if s.Line != 8 || s.Script != "docker service scale invoices_customers=3\n" {
		t.Errorf("step 1 = line %d %q", s.Line, s.Script)
	}
	if s.Expect.Line != 12 || len(s.Expect.Match) != 1 || s.Expect.Match[0].Line != 14 || len(s.Expect.NoMatch) != 1 || s.Expect.NoMatch[0].Line != 15 {
		t.Errorf("expect = %+v", s.Expect)
	}
	if p.Steps[1].Line != 20 || p.Steps[1].Expect.Line != 0 {
		t.Errorf("step 2 = %+v", p.Steps[1])
	}
}

func TestExpectCheckNamesTheFailedLine(t *testing.T) {
	p, err := ParsePage("p.md", []byte(samplePage))
	if err != nil {
		t.Fatal(err)
	}
	e := p.Steps[0].Expect
	if err := e.Check("p.md", "overall progress\nverify: Service invoices_customers converged\n", 0); err != nil {
		t.Errorf("good output refused: %v", err)
	}
	err = e.Check("p.md", "Error response from daemon: no such service\n", 1)
	if err == nil {
		t.Fatal("bad output accepted")
	}
	for _, want := range []string{"exited 1, want 0", `does not match "^verify: Service .*converged" (p.md:14)`, `matches "Error"`, "(p.md:15)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestExpectExitNonzero(t *testing.T) {
	e, err := parseExpect("p.md", 1, "exit: nonzero\nleader\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Check("p.md", "Error: The swarm does not have a leader\n", 0); err == nil || !strings.Contains(err.Error(), "expects a failure") {
		t.Errorf("exit 0 must fail an exit: nonzero step, got %v", err)
	}
	if err := e.Check("p.md", "Error: The swarm does not have a leader\n", 1); err != nil {
		t.Errorf("exit 1: %v", err)
	}
}

func TestParsePageErrorsNameFileAndLine(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"# no header\n```sh\nls\n```\n", "x.md:1: no header"},
		{"<!-- workshop: needs=a -->\n```sh\nls\n```\n", "x.md:1: header: group is missing"},
		{"\n<!-- workshop: group=a colour=red -->\n", `x.md:2: header: unknown key "colour"`},
		{"<!-- workshop: group=a -->\n\n```expect\nx\n```\n", "x.md:3: an expect block must come right after"},
		{"<!-- workshop: group=a -->\n```sh\nls\n```\n```expect\nexit: maybe\n```\n", `x.md:6: exit: "maybe"`},
		{"<!-- workshop: group=a -->\n```sh\nls\n```\n```expect\n(unclosed\n```\n", "x.md:6: error parsing regexp"},
		{"<!-- workshop: group=a -->\n```sh run\nls\n```\n", `x.md:2: fence info "sh run"`},
		{"<!-- workshop: group=a -->\nno steps\n", "x.md: no ```sh steps"},
	} {
		_, err := ParsePage("x.md", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.src, err, tc.want)
		}
	}
}

// The shipped pages parse, and every page states an outcome for each step
// that changes the cluster or reads it: a step without an expect block only
// has to exit 0, so most steps should say more.
func TestShippedPagesParse(t *testing.T) {
	pages, err := Load("../../docs/workshop")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		checked := 0
		for _, s := range p.Steps {
			if s.Expect.Line != 0 {
				checked++
			}
		}
		if checked == 0 {
			t.Errorf("%s: no step has an expect block", p.Path)
		}
	}
}

func TestNotRunNamesTheMissingStack(t *testing.T) {
	p := Page{Topology: "swarm-3", Needs: []string{"invoices"}}
	if why := p.NotRun([]string{"invoices", "viz"}); why != "" {
		t.Errorf("runnable page: %q", why)
	}
	why := p.NotRun([]string{"viz"})
	for _, want := range []string{"NOT RUN (not a pass)", "stack invoices", "swarm-3", "app/invoices/stack.yml"} {
		if !strings.Contains(why, want) {
			t.Errorf("%q lacks %q", why, want)
		}
	}
}
