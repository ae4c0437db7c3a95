package compile

import (
	"strings"
	"testing"

	"envd.dev/envd/internal/ir"
)

// A fixed config.jupyter(token=...) stays out of the image's labels.
func TestLabelsHoldNoJupyterToken(t *testing.T) {
	env := pythonEnv()
	env.Jupyter = &ir.Jupyter{Token: "s3cr3t-token", Port: 8888}
	_, res := compileGraph(t, env, Options{EnvdVersion: "v0.1.0"})
	for k, v := range res.Config.Config.Labels {
		if strings.Contains(v, "s3cr3t-token") {
			t.Errorf("label %s holds the token: %s", k, v)
		}
	}
	if !strings.Contains(res.Config.Config.Labels[LabelEnvironment], `"jupyter"`) {
		t.Errorf("environment label lost Jupyter itself: %s", res.Config.Config.Labels[LabelEnvironment])
	}
}
