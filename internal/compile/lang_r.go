package compile

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"envd.dev/envd/internal/ir"
)

const (
	defaultCRAN = "https://cran.rstudio.com"
	// rDownloadsID keeps CRAN's source tarballs between builds: a rebuild
	// compiles what changed without downloading it again.
	rDownloadsID = "envd-r-downloads"
	rDownloads   = "/var/cache/envd/r"
	rstudioDeb   = "2024.12.0-467"
)

// rLang configures the CRAN mirror, installs RStudio Server when asked and
// installs R packages. r-base itself comes from the language packages step.
func (c *compiler) rLang(st llb.State) llb.State {
	r := c.env.R
	mirror := r.CRANMirror
	if mirror == "" {
		mirror = defaultCRAN
	}
	// Rprofile.site makes the mirror the default in the environment too.
	profile := fmt.Sprintf("options(repos = c(CRAN = %s))", strconv.Quote(mirror))
	st = c.script(st, "R: CRAN mirror "+mirror+at(r.Pos), "echo "+shellJoin([]string{profile})+" >> /etc/R/Rprofile.site")
	if r.RStudio {
		st = c.rstudio(st, r.Pos)
	}
	if len(r.Packages) == 0 {
		return st
	}
	names := sortedNames(r.Packages)
	return st.Run(append(c.trust(),
		llb.Args(append([]string{"Rscript", "-e", rInstall, mirror}, names...)),
		llb.AddMount(rDownloads, llb.Scratch(), llb.AsPersistentCacheDir(rDownloadsID, llb.CacheMountLocked)),
		named(fmt.Sprintf("R packages: %s%s", strings.Join(names, " "), at(r.Packages[0].Pos))),
	)...).Root()
}

// rstudioCodename is the Ubuntu release whose RStudio Server .deb suits
// the base image: jammy's also runs on 24.04.
func rstudioCodename(image string) string {
	if strings.HasSuffix(image, ":20.04") || strings.HasSuffix(image, "-ubuntu20.04") {
		return "focal"
	}
	return "jammy"
}

// rInstall installs the packages named after the mirror in its arguments.
// CRAN's source tarballs are kept in a local repository in the cache mount
// (install.packages alone downloads them again every time), so a rebuild
// downloads only what it lacks; install.packages then resolves from it.
// install.packages only warns when a package fails: check them all.
const rInstall = `args <- commandArgs(trailingOnly = TRUE)
mirror <- args[1]; pkgs <- args[-1]
root <- "` + rDownloads + `"; dest <- file.path(root, "src", "contrib")
dir.create(dest, recursive = TRUE, showWarnings = FALSE)
ap <- available.packages(repos = mirror)
unknown <- setdiff(pkgs, c(rownames(ap), rownames(installed.packages())))
if (length(unknown)) stop("not on ", mirror, ": ", paste(unknown, collapse = ", "))
deps <- tools::package_dependencies(pkgs, db = ap, recursive = TRUE, which = c("Depends", "Imports", "LinkingTo"))
need <- setdiff(intersect(unique(c(pkgs, unlist(deps))), rownames(ap)), rownames(installed.packages()))
files <- file.path(dest, paste0(need, "_", ap[need, "Version"], ".tar.gz"))
if (any(!file.exists(files))) download.packages(need[!file.exists(files)], destdir = dest, available = ap, repos = mirror)
tools::write_PACKAGES(dest, type = "source")
install.packages(pkgs, repos = paste0("file://", root), Ncpus = parallel::detectCores())
for (p in pkgs) if (!requireNamespace(p, quietly = TRUE)) quit(status = 1)
`

// rstudio installs RStudio Server's .deb with apt, which fetches its
// dependencies; the .deb is mounted, never copied into a layer.
func (c *compiler) rstudio(st llb.State, pos ir.Pos) llb.State {
	// Built for jammy on arm64 too; checkPlatform refuses focal there.
	arch := c.opts.Platform.Arch
	url := fmt.Sprintf("https://download2.rstudio.org/server/%s/%s/rstudio-server-%s-%s.deb", rstudioCodename(c.env.Base.Image), arch, rstudioDeb, arch)
	script := "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends " + downloadDir + "/rstudio-server.deb"
	return c.script(st, "R: RStudio Server "+rstudioDeb+at(pos), script,
		download(url, "rstudio-server.deb"),
		llb.AddMount("/var/cache/apt", llb.Scratch(), llb.AsPersistentCacheDir(AptArchivesID, llb.CacheMountLocked)),
		llb.AddMount("/var/lib/apt", llb.Scratch(), llb.AsPersistentCacheDir(c.aptListsID(), llb.CacheMountLocked)),
	)
}
