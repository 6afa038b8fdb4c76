// Package env lets each vote program option come from an environment
// variable and be overridden by a flag. The code is shared by every app, in
// app/internal/env.
package env

import shared "github.com/swarmlab/swarmlab/app/internal/env"

var (
	// String defines a string flag whose default comes from $key.
	String = shared.String
	// Int defines an int flag whose default comes from $key.
	Int = shared.Int
	// Duration defines a duration flag whose default comes from $key.
	Duration = shared.Duration
	// Bool defines a bool flag whose default comes from $key.
	Bool = shared.Bool
	// Hostname is the default node name and consumer-name prefix.
	Hostname = shared.Hostname
	// List splits a comma-separated list, dropping blanks.
	List = shared.List
)
