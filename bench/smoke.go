package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"envd.dev/envd/internal/testing/pyindex"
)

// smokeChecks holds envd to what issue 5 asks of every rebuild. It fails when
//  1. a build downloads a wheel this run has downloaded before (the index counts every file it serves);
//  2. adding one package reinstalls the others: the add-package build's log must show pip (or uv) installing
//     the added distribution and nothing else ("Successfully installed …" / " + name==version"), and at least
//     one step whose name starts with "python packages" must be cached (the other distributions' layers);
//  3. the no-op build runs a solve: its --metadata-file must say "skipped": true;
//  4. the second project, whose packages the first has all had, downloads no wheel and installs nothing: its
//     package layers are the first's;
//  5. a teammate's first build, with the team cache, downloads no wheel and runs no install step.
//
// Besides, every sequence ends by importing all packages in the image (bench.sequence).
func smokeChecks(out io.Writer, results []result, works []*workload) error {
	failed := 0
	report := func(ok bool, name, detail string) {
		verdict := "PASS"
		if !ok {
			verdict = "FAIL"
			failed++
		}
		fmt.Fprintf(out, "%s  %s: %s\n", verdict, name, detail)
	}
	fmt.Fprintln(out)
	for _, w := range works {
		var rs []result
		for _, r := range results {
			if r.Workload == w.name && r.Tool == "envd" {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		ok, detail := checkNoRedownload(rs)
		report(ok, "no wheel downloaded twice", detail)
		if r, found := find(rs, "add-package"); found {
			ok, detail := checkAddInstallsOne(r, w.add)
			report(ok, "adding one package installs that package alone", detail)
		}
		if r, found := find(rs, "noop"); found {
			report(r.Skipped, "a no-op build skips the solve", fmt.Sprintf("skipped=%v in --metadata-file, %.2f s", r.Skipped, r.Seconds))
		}
		if r, found := find(rs, "second-project"); found {
			report(r.Wheels == 0 && len(r.Installed) == 0, "a second project sharing the packages reuses their layers",
				fmt.Sprintf("%d wheel downloads, installed %v (want none), %d of %d layers new to Docker", r.Wheels, r.Installed, r.NewLayers, r.Layers))
		}
		if r, found := find(rs, "team-cache"); found {
			var ran []string
			for _, s := range r.steps {
				if strings.HasPrefix(s.name, "python packages: install") && !s.cached {
					ran = append(ran, s.name)
				}
			}
			// Not the tools' wheels (uv): a new machine fetches uv once, for every environment.
			var got []string
			for f := range r.Files {
				if _, ok := w.wheels[f]; ok {
					got = append(got, f)
				}
			}
			slices.Sort(got)
			report(len(got) == 0 && len(ran) == 0, "a teammate's build from the team cache downloads and installs nothing",
				fmt.Sprintf("downloaded %q, install steps run %q (want none), %.2f s", got, ran, r.Seconds))
		}
	}
	if failed > 0 {
		return fmt.Errorf("smoke: %d check(s) failed", failed)
	}
	return nil
}

// requirementName is the normalized distribution name of a requirement such as "tqdm==4.67.1".
func requirementName(req string) string {
	return pyindex.NormalizeName(strings.FieldsFunc(req, func(c rune) bool { return strings.ContainsRune("=<>!~ [;", c) })[0])
}

func find(rs []result, scenario string) (result, bool) {
	for _, r := range rs {
		if r.Scenario == scenario {
			return r, true
		}
	}
	return result{}, false
}

func checkNoRedownload(rs []result) (bool, string) {
	var bad []string
	for _, r := range rs {
		if r.Redownloaded == 0 {
			continue
		}
		var files []string
		for f, n := range r.Files {
			files = append(files, fmt.Sprintf("%s×%d", f, n))
		}
		slices.Sort(files)
		bad = append(bad, fmt.Sprintf("%s re-downloaded %d (downloads: %s)", r.Scenario, r.Redownloaded, strings.Join(files, ", ")))
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; ")
	}
	var scen []string
	for _, r := range rs {
		scen = append(scen, fmt.Sprintf("%s %d", r.Scenario, r.Wheels))
	}
	return true, "wheel downloads per build: " + strings.Join(scen, ", ")
}

// checkAddInstallsOne reads the add-package build: which distributions were installed, and whether any
// "python packages" step came from the cache.
func checkAddInstallsOne(r result, added string) (bool, string) {
	want := requirementName(added)
	var cachedPy, ranPy []string
	for _, s := range r.steps {
		if !strings.HasPrefix(s.name, "python packages") {
			continue
		}
		if s.cached {
			cachedPy = append(cachedPy, s.name)
		} else {
			ranPy = append(ranPy, s.name)
		}
	}
	detail := fmt.Sprintf("installed %v (want [%s]); python packages steps: %d cached, %d run %q",
		r.Installed, want, len(cachedPy), len(ranPy), ranPy)
	return slices.Equal(r.Installed, []string{want}) && len(cachedPy) > 0, detail
}
