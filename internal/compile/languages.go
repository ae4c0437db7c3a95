package compile

import "github.com/moby/buildkit/client/llb"

// languageSteps installs what the envd v1 API's other installers recorded
// (install.conda, install.uv, install.rust, ...), in the order declared.
// It runs after the dev user exists and before run()/io.copy() steps.
func (c *compiler) languageSteps(st llb.State) llb.State {
	return st
}
