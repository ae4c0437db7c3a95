package main

import (
	"encoding/base64"
	"fmt"
	"slices"
	"testing"
)

func TestPipDownloads(t *testing.T) {
	text := "Collecting numpy==2.1.3\n" +
		"  Downloading numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.whl (16.3 MB)\n" +
		"  Downloading http://172.17.0.1:4000/files/bench_a-1.0-py3-none-any.whl (314.6 MB)\n" +
		"  Downloading tqdm-4.67.1-py3-none-any.whl (78 kB)\n" +
		"  Downloading tiny-1.0-py3-none-any.whl (912 bytes)\n" +
		"  Using cached pandas-2.2.3-cp311-cp311-manylinux_2_17_x86_64.whl (13.1 MB)\n" +
		"Downloading scikit-learn (8.5MiB)\n Downloaded scikit-learn\n"
	want := []download{
		{"numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.whl", 16_300_000},
		{"bench_a-1.0-py3-none-any.whl", 314_600_000},
		{"tqdm-4.67.1-py3-none-any.whl", 78_000},
		{"tiny-1.0-py3-none-any.whl", 912},
		{"scikit-learn", 8_912_896},
	}
	if got := pipDownloads(text); !slices.Equal(got, want) {
		t.Errorf("pipDownloads = %v, want %v", got, want)
	}
}

func TestInstalledPackages(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"Successfully installed alpha-1.0 beta-2.0 req-pkg-1.1\n", []string{"alpha", "beta", "req-pkg"}},
		{"Installing collected packages: delta\nSuccessfully installed delta-1.0\n", []string{"delta"}},
		{"Installed 2 packages in 3ms\n + Scikit_Learn==1.5.2\n + tqdm==4.67.1\n", []string{"scikit-learn", "tqdm"}},
		{"Would install delta-1.0\n", nil},
	}
	for _, tt := range tests {
		if got := installedPackages(tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("installedPackages(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestParsePlain(t *testing.T) {
	out := `#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s

#4 [stage-0 1/5] FROM 127.0.0.1:5000/library/debian:bookworm
#4 DONE 0.0s

#5 [stage-0 2/5] RUN rm -f /etc/apt/apt.conf.d/docker-clean
#5 CACHED

#6 [stage-0 3/5] RUN --mount=type=cache,target=/root/.cache/pip pip install a
#6 0.512 Collecting a
#6 1.020   Downloading a-1.0-py3-none-any.whl (1.0 MB)
#6 1.400 Successfully installed a-1.0
#6 DONE 12.3s

#7 [stage-0 4/5] COPY requirements.txt /tmp/requirements.txt
#7 DONE 0.1s

#8 exporting to image
#8 DONE 0.4s
`
	steps, text := parsePlain([]byte(out))
	if total, cached := countDockerfileSteps(steps); total != 3 || cached != 1 {
		t.Errorf("steps %d, cached %d; want 3 and 1", total, cached)
	}
	if len(steps) != 6 || steps[3].seconds != 12.3 || steps[5].name != "exporting to image" || steps[5].seconds != 0.4 {
		t.Errorf("steps = %+v", steps)
	}
	if got := installedPackages(text); !slices.Equal(got, []string{"a"}) {
		t.Errorf("installed from the log: %v", got)
	}
}

func TestParseLegacy(t *testing.T) {
	out := "Step 1/4 : FROM 127.0.0.1:5000/library/debian:bookworm\n ---> 7bff35b710eb\n" +
		"Step 2/4 : RUN apt-get update\n ---> Using cache\n ---> 1\n" +
		"Step 3/4 : ENV A=b\n ---> Using cache\n ---> 2\n" +
		"Step 4/4 : RUN pip install a\n ---> Running in 3\n"
	if total, cached := parseLegacy(out); total != 3 || cached != 2 {
		t.Errorf("parseLegacy = %d, %d; want 3, 2", total, cached)
	}
}

func TestParseRawJSON(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	out := "starting the builder\n" +
		`{"vertexes":[{"digest":"sha256:aa","name":"python packages: install delta 1.0","started":"2026-01-01T00:00:00Z"}]}` + "\n" +
		fmt.Sprintf(`{"logs":[{"vertex":"sha256:aa","stream":1,"data":%q,"timestamp":"2026-01-01T00:00:01Z"}]}`, b64("Successfully installed delta-1.0\n")) + "\n" +
		`{"vertexes":[{"digest":"sha256:aa","name":"python packages: install delta 1.0","started":"2026-01-01T00:00:00Z","completed":"2026-01-01T00:00:02Z"}]}` + "\n" +
		`{"vertexes":[{"digest":"sha256:bb","name":"python packages: install alpha 1.0","started":"2026-01-01T00:00:01Z","completed":"2026-01-01T00:00:03Z","cached":true}]}` + "\n"
	steps, text := parseRawJSON([]byte(out))
	if len(steps) != 2 || steps[0].seconds != 2 || steps[0].cached || !steps[1].cached {
		t.Fatalf("steps = %+v", steps)
	}
	if got := installedPackages(text); !slices.Equal(got, []string{"delta"}) {
		t.Errorf("installed = %v", got)
	}
	if span := stepSpan(steps); span != 3 {
		t.Errorf("stepSpan = %v, want 3 (two overlapping steps from 0 s to 3 s)", span)
	}
}

func TestAccountCountsRedownloads(t *testing.T) {
	w := &workload{pypi: true}
	seen := map[string]bool{}
	first := result{text: "Downloading a-1.0-py3-none-any.whl (1.0 MB)\nDownloading b-1.0-py3-none-any.whl (2.0 MB)\n"}
	w.account(&first, seen)
	again := result{text: "Downloading a-1.0-py3-none-any.whl (1.0 MB)\nDownloading c-1.0-py3-none-any.whl (1.0 MB)\n"}
	w.account(&again, seen)
	if first.Redownloaded != 0 || first.Bytes != 3_000_000 || again.Redownloaded != 1 || again.Wheels != 2 {
		t.Errorf("first %+v, again %+v", first, again)
	}
}

func TestRequirementName(t *testing.T) {
	for in, want := range map[string]string{"tqdm==4.67.1": "tqdm", "Bench_Add==1.0": "bench-add", "numpy>=2": "numpy", "delta": "delta"} {
		if got := requirementName(in); got != want {
			t.Errorf("requirementName(%q) = %q, want %q", in, got, want)
		}
	}
}
