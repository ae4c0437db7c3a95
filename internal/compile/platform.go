package compile

import (
	"fmt"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"envd.dev/envd/internal/ir"
)

// Platform is the OS and CPU an image is built for. envd builds Linux
// images; Arch is Go's name of the CPU.
type Platform struct{ Arch string }

// The platforms envd builds images for.
var (
	LinuxAMD64 = Platform{Arch: "amd64"}
	LinuxARM64 = Platform{Arch: "arm64"}
	// Platforms lists them all, in the order messages name them.
	Platforms = []Platform{LinuxAMD64, LinuxARM64}
)

// String is "linux/ARCH", as --platform and BuildKit write it.
func (p Platform) String() string { return "linux/" + p.Arch }

// OCI is p as BuildKit's sources and ops take it.
func (p Platform) OCI() ocispecs.Platform {
	return ocispecs.Platform{OS: "linux", Architecture: p.Arch}
}

// variant is the image config's CPU variant: the one Docker Hub's arm64
// images give.
func (p Platform) variant() string {
	if p == LinuxARM64 {
		return "v8"
	}
	return ""
}

// machine is the kernel's name of the CPU (uname -m), which most download
// URLs use.
func (p Platform) machine() string {
	if p == LinuxARM64 {
		return "aarch64"
	}
	return "x86_64"
}

// nodeArch is Node.js's (and Julia's directory) name of the CPU.
func (p Platform) nodeArch() string {
	if p == LinuxARM64 {
		return "arm64"
	}
	return "x64"
}

func (p Platform) check() error {
	for _, s := range Platforms {
		if p == s {
			return nil
		}
	}
	if p == (Platform{}) {
		return fmt.Errorf("compile: no platform given (Options.Platform)")
	}
	return fmt.Errorf("compile: platform %s: envd builds %s", p, PlatformNames())
}

// PlatformNames lists the platforms envd builds for, for messages.
func PlatformNames() string {
	s := ""
	for i, p := range Platforms {
		if i > 0 {
			s += " and "
		}
		s += p.String()
	}
	return s
}

// constraint makes a source or a marshalled graph the platform's.
func (c *compiler) constraint() llb.ConstraintsOpt { return llb.Platform(c.opts.Platform.OCI()) }

// checkPlatform reports what env asks for that has no build for the
// platform, at the line that asks for it.
func checkPlatform(env *ir.Environment, p Platform) error {
	if err := p.check(); err != nil {
		return err
	}
	if r := env.R; r != nil && r.RStudio && p == LinuxARM64 && rstudioCodename(env.Base.Image) == "focal" {
		return ir.Errorf(r.Pos, "use an Ubuntu 22.04 or later base, or build for linux/amd64 (--platform linux/amd64)",
			"RStudio Server has no linux/arm64 build for Ubuntu 20.04 (%s)", env.Base.Image)
	}
	return nil
}
