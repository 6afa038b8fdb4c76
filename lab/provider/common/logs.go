package common

import "errors"

// Kept logs. Every node of a docker lab mounts the lab's logs volume at
// LogsDir, and the node's log collector (lab/images/node/swarmlab-logd)
// writes there, as they run, its engine's log, its events and the output of
// every container the engine starts. The volume carries LabelLogs (the
// lab's name) and not LabelLab: down, Leftovers and the listings of labs
// pass it by, so the logs outlive the lab (its tasks, its killed nodes, its
// down) until swarmlab logs --prune or down --purge removes them, or a new
// lab of the same name replaces them.
const (
	LabelLogs = "io.swarmlab.logs"
	LogsDir   = "/var/log/swarmlab"
	// ComponentLogsReader is the LabelComponent of a throwaway container
	// that reads a logs volume.
	ComponentLogsReader = "logs-reader"
)

// LogsVolume names the logs volume of lab.
func LogsVolume(lab string) string { return "swarmlab-logs-" + lab }

// ErrNoLogs is returned for a lab whose logs are not kept.
var ErrNoLogs = errors.New("no logs kept")
