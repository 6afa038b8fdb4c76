// Package aws provisions a topology's nodes as EC2 instances with one
// CloudFormation stack, and writes an ssh topology for them so `swarmlab up`
// forms the swarm there as it does on local containers.
//
// The template is generated from the topology (Plan), created and awaited
// through the CloudFormation API (Up, Down), and the instances' addresses and
// SSH host keys are read back to write the ssh topology.
package aws

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"

	"github.com/swarmlab/swarmlab/lab/topology"
)

// DebianImage is the public SSM parameter that names the newest Debian 12
// AMI for amd64 in every region; CloudFormation resolves it at create time.
const DebianImage = "/aws/service/debian/release/12/latest/amd64"

// DefaultInstanceType is big enough for the vote stack's Postgres, Redis and
// Go services on one node (2 vCPU, 2 GiB).
const DefaultInstanceType = "t3.small"

// DefaultUser is the login user of Debian's cloud images.
const DefaultUser = "admin"

// VPCCIDR is the address range of the VPC the stack creates; SubnetCIDR is
// its one public subnet.
const (
	VPCCIDR    = "10.42.0.0/16"
	SubnetCIDR = "10.42.1.0/24"
)

// DockerReadyTimeout bounds, in seconds, how long CloudFormation waits for a
// node to report Docker installed and running (apt-get update + install).
const DockerReadyTimeout = 900

// Tag keys carried by every instance (and, as stack tags, by every resource).
const (
	TagLab  = "swarmlab:lab"
	TagNode = "swarmlab:node"
	TagRole = "swarmlab:role"
)

// Spec is what a user chooses about the AWS side of a lab.
type Spec struct {
	// CIDR is who may reach SSH and the published app ports, e.g. the
	// caller's public address as 203.0.113.7/32. Required.
	CIDR string
	// KeyName is an EC2 key pair in the region; its private key logs in.
	KeyName string
	// InstanceType defaults to DefaultInstanceType.
	InstanceType string
	// Image is an AMI ID (ami-...) or an SSM parameter path naming one;
	// defaults to DebianImage.
	Image string
	// User is the image's login user, added to the docker group; defaults
	// to DefaultUser (Debian's).
	User string
	// VPCID and SubnetID use an existing VPC and public subnet instead of
	// creating them; give both or neither.
	VPCID, SubnetID string
}

// Port is a port the stacks publish.
type Port struct {
	Port     uint32
	Protocol string // tcp or udp
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Port, p.Protocol) }

// PlannedNode ties a topology node to its resources in the template.
type PlannedNode struct {
	Name string
	Role string
	// ID is the node's part of logical IDs and output keys: Instance<ID>,
	// <ID>PublicIp, <ID>PrivateIp, <ID>HostKeys.
	ID string
}

// Plan is a generated CloudFormation stack for a topology.
type Plan struct {
	StackName string
	Lab       string
	Nodes     []PlannedNode
	Ports     []Port // published app ports opened to Spec.CIDR
	Template  []byte // JSON
}

// StackName is the CloudFormation stack that holds lab's instances.
func StackName(lab string) string { return "swarmlab-" + lab }

var (
	vpcID    = regexp.MustCompile(`^vpc-[0-9a-f]{8,17}$`)
	subnetID = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	amiID    = regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`)
)

// Check defaults spec and reports what is wrong with it, naming the flag.
func (s *Spec) Check() error {
	if s.InstanceType == "" {
		s.InstanceType = DefaultInstanceType
	}
	if s.Image == "" {
		s.Image = DebianImage
	}
	if s.User == "" {
		s.User = DefaultUser
	}
	var errs []string
	switch ip, n, err := net.ParseCIDR(s.CIDR); {
	case s.CIDR == "":
		errs = append(errs, "--cidr is required: the addresses allowed to reach SSH and the app ports, e.g. your public IP as 203.0.113.7/32")
	case err != nil:
		errs = append(errs, fmt.Sprintf("--cidr %q is not a CIDR (expected e.g. 203.0.113.7/32)", s.CIDR))
	case ip.To4() == nil:
		errs = append(errs, fmt.Sprintf("--cidr %q is IPv6; the stack's network is IPv4 only", s.CIDR))
	default:
		if ones, _ := n.Mask.Size(); ones == 0 {
			errs = append(errs, fmt.Sprintf("--cidr %q would open SSH and the app ports to the whole internet; give your own address range", s.CIDR))
		}
		s.CIDR = n.String()
	}
	if s.KeyName == "" {
		errs = append(errs, "--key-name is required: the EC2 key pair whose private key logs in to the instances")
	}
	if (s.VPCID == "") != (s.SubnetID == "") {
		errs = append(errs, "--vpc-id and --subnet-id go together: give both to use an existing VPC, or neither to create one")
	}
	if s.VPCID != "" && !vpcID.MatchString(s.VPCID) {
		errs = append(errs, fmt.Sprintf("--vpc-id %q is not a VPC ID (expected vpc-0123abcd...)", s.VPCID))
	}
	if s.SubnetID != "" && !subnetID.MatchString(s.SubnetID) {
		errs = append(errs, fmt.Sprintf("--subnet-id %q is not a subnet ID (expected subnet-0123abcd...)", s.SubnetID))
	}
	if !amiID.MatchString(s.Image) && !strings.HasPrefix(s.Image, "/") {
		errs = append(errs, fmt.Sprintf("--ami %q is neither an AMI ID (ami-...) nor an SSM parameter path (/...)", s.Image))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// NewPlan generates the stack for t's nodes. ports are the app ports to
// open to spec.CIDR (see PublishedPorts). spec must have passed Check.
func NewPlan(t *topology.Topology, spec Spec, ports []Port) (*Plan, error) {
	p := &Plan{StackName: StackName(t.Name), Lab: t.Name, Ports: ports}
	used := map[string]bool{}
	for i, n := range t.Nodes {
		id := logicalID(n.Name)
		if used[id] {
			id = fmt.Sprintf("%s%d", id, i+1)
		}
		used[id] = true
		p.Nodes = append(p.Nodes, PlannedNode{Name: n.Name, Role: n.Role, ID: id})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "Value<AWS::EC2::Image::Id>" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(p.template(spec)); err != nil {
		return nil, err
	}
	p.Template = buf.Bytes()
	return p, nil
}

// logicalID turns "frontend-01" into "Frontend01": logical IDs and output
// keys must be alphanumeric.
func logicalID(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

type obj = map[string]any

func ref(name string) obj                { return obj{"Ref": name} }
func getAtt(res, attr string) obj        { return obj{"Fn::GetAtt": []string{res, attr}} }
func tag(key string, value any) obj      { return obj{"Key": key, "Value": value} }
func resource(typ string, props obj) obj { return obj{"Type": typ, "Properties": props} }

func (p *Plan) template(spec Spec) obj {
	resources := obj{}
	labTags := func(name string) []obj {
		return []obj{tag("Name", name), tag(TagLab, p.Lab)}
	}
	vpc, subnet := any(spec.VPCID), any(spec.SubnetID)
	var instanceDependsOn []string
	if spec.VPCID == "" {
		vpc, subnet = ref("VPC"), ref("Subnet")
		instanceDependsOn = []string{"DefaultRoute"}
		resources["VPC"] = resource("AWS::EC2::VPC", obj{
			"CidrBlock": VPCCIDR, "EnableDnsSupport": true, "EnableDnsHostnames": true,
			"Tags": labTags(p.StackName),
		})
		resources["InternetGateway"] = resource("AWS::EC2::InternetGateway", obj{"Tags": labTags(p.StackName)})
		resources["GatewayAttachment"] = resource("AWS::EC2::VPCGatewayAttachment", obj{
			"VpcId": ref("VPC"), "InternetGatewayId": ref("InternetGateway"),
		})
		resources["Subnet"] = resource("AWS::EC2::Subnet", obj{
			"VpcId": ref("VPC"), "CidrBlock": SubnetCIDR, "MapPublicIpOnLaunch": true,
			"AvailabilityZone": obj{"Fn::Select": []any{0, obj{"Fn::GetAZs": ""}}},
			"Tags":             labTags(p.StackName + "-public"),
		})
		resources["RouteTable"] = resource("AWS::EC2::RouteTable", obj{"VpcId": ref("VPC"), "Tags": labTags(p.StackName)})
		route := resource("AWS::EC2::Route", obj{
			"RouteTableId": ref("RouteTable"), "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": ref("InternetGateway"),
		})
		route["DependsOn"] = "GatewayAttachment"
		resources["DefaultRoute"] = route
		resources["SubnetRouteTable"] = resource("AWS::EC2::SubnetRouteTableAssociation", obj{
			"SubnetId": ref("Subnet"), "RouteTableId": ref("RouteTable"),
		})
	}

	// From the caller: SSH and the published app ports. Between members:
	// swarm management, gossip and the overlay's VXLAN, and nothing else.
	fromCaller := []obj{{
		"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": spec.CIDR,
		"Description": "SSH from the swarmlab caller",
	}}
	for _, port := range p.Ports {
		fromCaller = append(fromCaller, obj{
			"IpProtocol": port.Protocol, "FromPort": port.Port, "ToPort": port.Port, "CidrIp": spec.CIDR,
			"Description": "published app port " + port.String(),
		})
	}
	resources["SecurityGroup"] = resource("AWS::EC2::SecurityGroup", obj{
		"GroupDescription":     "swarmlab " + p.Lab + ": swarm ports between members, SSH and app ports from " + spec.CIDR,
		"VpcId":                vpc,
		"SecurityGroupIngress": fromCaller,
		"Tags":                 labTags(p.StackName),
	})
	for _, r := range []struct {
		id, proto string
		port      int
		what      string
	}{
		{"SwarmManagementTcp", "tcp", 2377, "swarm cluster management"},
		{"SwarmGossipTcp", "tcp", 7946, "swarm node gossip"},
		{"SwarmGossipUdp", "udp", 7946, "swarm node gossip"},
		{"SwarmOverlayUdp", "udp", 4789, "overlay network (VXLAN)"},
	} {
		// A separate resource, because a group cannot name itself in its
		// own SecurityGroupIngress.
		resources[r.id] = resource("AWS::EC2::SecurityGroupIngress", obj{
			"GroupId": getAtt("SecurityGroup", "GroupId"), "SourceSecurityGroupId": getAtt("SecurityGroup", "GroupId"),
			"IpProtocol": r.proto, "FromPort": r.port, "ToPort": r.port,
			"Description": fmt.Sprintf("%s %d/%s between lab members", r.what, r.port, r.proto),
		})
	}

	outputs := obj{}
	for _, n := range p.Nodes {
		instance, handle, ready := "Instance"+n.ID, "DockerHandle"+n.ID, "DockerReady"+n.ID
		resources[handle] = obj{"Type": "AWS::CloudFormation::WaitConditionHandle"}
		inst := resource("AWS::EC2::Instance", obj{
			"ImageId":      ref("ImageId"),
			"InstanceType": spec.InstanceType,
			"KeyName":      spec.KeyName,
			"NetworkInterfaces": []obj{{
				"DeviceIndex": "0", "AssociatePublicIpAddress": true,
				"SubnetId": subnet, "GroupSet": []any{getAtt("SecurityGroup", "GroupId")},
			}},
			"MetadataOptions": obj{"HttpTokens": "required"},
			"UserData":        obj{"Fn::Base64": obj{"Fn::Sub": userData(p.Lab, n, handle, spec.User)}},
			"Tags": []obj{
				tag("Name", p.StackName+"-"+n.Name), tag(TagLab, p.Lab), tag(TagNode, n.Name), tag(TagRole, n.Role),
			},
		})
		if instanceDependsOn != nil {
			inst["DependsOn"] = instanceDependsOn
		}
		resources[instance] = inst
		// The stack completes only once every node has Docker running, so
		// `swarmlab up` never races the install.
		wc := resource("AWS::CloudFormation::WaitCondition", obj{
			"Handle": ref(handle), "Timeout": fmt.Sprint(DockerReadyTimeout), "Count": 1,
		})
		wc["DependsOn"] = instance
		resources[ready] = wc
		outputs[n.ID+"InstanceId"] = obj{"Description": "instance of node " + n.Name, "Value": ref(instance)}
		outputs[n.ID+"PublicIp"] = obj{"Description": "public IPv4 address of node " + n.Name, "Value": getAtt(instance, "PublicIp")}
		outputs[n.ID+"PrivateIp"] = obj{"Description": "private IPv4 address of node " + n.Name, "Value": getAtt(instance, "PrivateIp")}
		outputs[n.ID+"HostKeys"] = obj{"Description": "SSH host keys of node " + n.Name + ", as its boot script sent them", "Value": getAtt(ready, "Data")}
	}

	imageParam := obj{"Type": "AWS::EC2::Image::Id", "Default": spec.Image, "Description": "AMI of every node"}
	if strings.HasPrefix(spec.Image, "/") {
		imageParam = obj{"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>", "Default": spec.Image,
			"Description": "SSM parameter naming the AMI of every node"}
	}
	return obj{
		"AWSTemplateFormatVersion": "2010-09-09",
		"Description":              fmt.Sprintf("swarmlab lab %s: %d EC2 instances with Docker for a Docker Swarm (made by swarmlab aws up)", p.Lab, len(p.Nodes)),
		"Parameters":               obj{"ImageId": imageParam},
		"Resources":                resources,
		"Outputs":                  outputs,
	}
}

// userData is the boot script of node n, a template for Fn::Sub (so it
// never writes a dollar-brace itself). It names the host, installs Docker
// from the distribution's packages, and signals handle with the outcome and
// the SSH host public keys (the wait condition's Data).
func userData(lab string, n PlannedNode, handle, user string) string {
	return strings.Join([]string{
		"#!/bin/sh",
		fmt.Sprintf("# swarmlab lab %s, node %s (%s): install Docker, then tell CloudFormation.", lab, n.Name, n.Role),
		"set -u",
		"hostnamectl set-hostname " + n.Name,
		"mkdir -p /etc/cloud/cloud.cfg.d && echo 'preserve_hostname: true' > /etc/cloud/cloud.cfg.d/99-swarmlab.cfg",
		"signal() {",
		fmt.Sprintf(`  curl -fsS -X PUT -H 'Content-Type:' --data-binary "{\"Status\":\"$1\",\"Reason\":\"$2\",\"UniqueId\":\"%s\",\"Data\":\"$3\"}" '${%s}'`, n.Name, handle),
		"}",
		"export DEBIAN_FRONTEND=noninteractive",
		"if apt-get update && apt-get install -y docker.io curl && usermod -aG docker " + user + " && systemctl enable --now docker && docker info >/dev/null; then",
		"  # The host keys travel back through CloudFormation, so the caller",
		"  # knows them before the first connection.",
		"  hostkeys=$(cat /etc/ssh/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ecdsa_key.pub | cut -d' ' -f1,2 | tr '\\n' ',')",
		`  signal SUCCESS "node ` + n.Name + `: docker $(docker version --format '{{.Server.Version}}') is running" "$hostkeys"`,
		"else",
		`  signal FAILURE "node ` + n.Name + `: installing or starting docker.io failed, see /var/log/cloud-init-output.log" ""`,
		"fi",
		"",
	}, "\n")
}

// sortPorts sorts and de-duplicates ports.
func sortPorts(ports []Port) []Port {
	sort.Slice(ports, func(i, j int) bool {
		if ports[i].Port != ports[j].Port {
			return ports[i].Port < ports[j].Port
		}
		return ports[i].Protocol < ports[j].Protocol
	})
	var out []Port
	for i, p := range ports {
		if i == 0 || p != ports[i-1] {
			out = append(out, p)
		}
	}
	return out
}
