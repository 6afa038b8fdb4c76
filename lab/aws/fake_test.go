package aws

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// fakeCloudFormation speaks the few actions of CloudFormation's query
// protocol that Up and Down use, over a local httptest server. A stack moves
// one step along its script on every DescribeStacks.
type fakeCloudFormation struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	stacks  map[string]*fakeStack // by name and by ID
	calls   []string              // actions in order
	created []string              // template bodies received
	tags    map[string]string     // tags of the last CreateStack

	// createScript and deleteScript are the statuses a new / deleted stack
	// goes through, one per DescribeStacks; events are added as they pass.
	createScript, deleteScript []fakeStep
	// outputs are set on the stack when it reaches CREATE_COMPLETE.
	outputs map[string]string
}

type fakeStep struct {
	status string
	events []fakeEvent // events that happen when the stack reaches status
}

type fakeEvent struct{ logicalID, resourceType, status, reason string }

type fakeStack struct {
	name, id string
	script   []fakeStep
	step     int
	events   []fakeEvent // oldest first
	outputs  map[string]string
	deleted  bool
}

func (s *fakeStack) status() string { return s.script[s.step].status }

func newFakeCloudFormation(t *testing.T) *fakeCloudFormation {
	f := &fakeCloudFormation{t: t, stacks: map[string]*fakeStack{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// config is an SDK configuration that reaches only the fake.
func (f *fakeCloudFormation) config() *aws.Config {
	return &aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret", ""),
		BaseEndpoint: aws.String(f.srv.URL),
		HTTPClient:   f.srv.Client(),
	}
}

func (f *fakeCloudFormation) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDFAKE/") {
		f.error(w, http.StatusForbidden, "InvalidClientTokenId", "request is not signed with the test credentials")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	action := r.Form.Get("Action")
	f.calls = append(f.calls, action)
	switch action {
	case "CreateStack":
		name := r.Form.Get("StackName")
		if s, ok := f.stacks[name]; ok && !s.deleted {
			f.error(w, http.StatusBadRequest, "AlreadyExistsException", "Stack ["+name+"] already exists")
			return
		}
		f.created = append(f.created, r.Form.Get("TemplateBody"))
		f.tags = map[string]string{}
		for i := 1; r.Form.Get(fmt.Sprintf("Tags.member.%d.Key", i)) != ""; i++ {
			f.tags[r.Form.Get(fmt.Sprintf("Tags.member.%d.Key", i))] = r.Form.Get(fmt.Sprintf("Tags.member.%d.Value", i))
		}
		s := &fakeStack{name: name, id: "arn:aws:cloudformation:eu-west-1:123456789012:stack/" + name + "/" + fmt.Sprint(len(f.created)),
			script: f.createScript}
		s.events = append(s.events, s.script[0].events...)
		f.stacks[name], f.stacks[s.id] = s, s
		f.respond(w, action, "<StackId>"+esc(s.id)+"</StackId>")
	case "DescribeStacks":
		s, ok := f.stacks[r.Form.Get("StackName")]
		// Like AWS: a deleted stack is found by its ID, not by its name.
		if !ok || (s.deleted && r.Form.Get("StackName") == s.name) {
			f.error(w, http.StatusBadRequest, "ValidationError", "Stack with id "+r.Form.Get("StackName")+" does not exist")
			return
		}
		if s.step < len(s.script)-1 {
			s.step++
			s.events = append(s.events, s.script[s.step].events...)
		}
		if s.status() == "CREATE_COMPLETE" {
			s.outputs = f.outputs
		}
		if s.status() == "DELETE_COMPLETE" {
			s.deleted = true
		}
		var outs strings.Builder
		for k, v := range s.outputs {
			fmt.Fprintf(&outs, "<member><OutputKey>%s</OutputKey><OutputValue>%s</OutputValue></member>", esc(k), esc(v))
		}
		f.respond(w, action, fmt.Sprintf("<Stacks><member><StackName>%s</StackName><StackId>%s</StackId>"+
			"<CreationTime>2025-01-01T00:00:00Z</CreationTime><StackStatus>%s</StackStatus><Outputs>%s</Outputs></member></Stacks>",
			esc(s.name), esc(s.id), s.status(), outs.String()))
	case "DescribeStackEvents":
		s, ok := f.stacks[r.Form.Get("StackName")]
		if !ok {
			f.error(w, http.StatusBadRequest, "ValidationError", "Stack "+r.Form.Get("StackName")+" does not exist")
			return
		}
		var evs strings.Builder
		for i := len(s.events) - 1; i >= 0; i-- { // newest first, as AWS lists them
			e := s.events[i]
			fmt.Fprintf(&evs, "<member><StackId>%s</StackId><StackName>%s</StackName><EventId>ev-%d</EventId>"+
				"<LogicalResourceId>%s</LogicalResourceId><ResourceType>%s</ResourceType>"+
				"<Timestamp>%s</Timestamp><ResourceStatus>%s</ResourceStatus><ResourceStatusReason>%s</ResourceStatusReason></member>",
				esc(s.id), esc(s.name), i, esc(e.logicalID), esc(e.resourceType),
				time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC).Format(time.RFC3339), e.status, esc(e.reason))
		}
		f.respond(w, action, "<StackEvents>"+evs.String()+"</StackEvents>")
	case "DeleteStack":
		s, ok := f.stacks[r.Form.Get("StackName")]
		if ok && !s.deleted {
			s.script, s.step = f.deleteScript, 0
			s.events = append(s.events, s.script[0].events...)
		}
		f.respond(w, action, "")
	default:
		f.error(w, http.StatusBadRequest, "InvalidAction", "the fake does not implement "+action)
	}
}

func (f *fakeCloudFormation) respond(w http.ResponseWriter, action, result string) {
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%[1]sResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">`+
		`<%[1]sResult>%[2]s</%[1]sResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></%[1]sResponse>`,
		action, result)
}

func (f *fakeCloudFormation) error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">`+
		`<Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-1</RequestId></ErrorResponse>`,
		code, esc(msg))
}

func (f *fakeCloudFormation) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
