//go:build tools

// Package tools records the validator commands this module pins; nothing here is compiled into the project.
package tools

import _ "github.com/docker/compose/v5/cmd"
