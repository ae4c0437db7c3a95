package ir

// Conda is install.conda, install.conda_packages and config.conda_channel:
// a conda environment (made by micromamba) that takes the venv's place, so
// pip and conda packages share one interpreter.
type Conda struct {
	// UseMamba is envd v1's choice between conda and mamba; envd always
	// installs micromamba and keeps the flag for the record.
	UseMamba bool `json:"use_mamba,omitempty"`
	// Channel is a .condarc, as config.conda_channel gives it.
	Channel  string    `json:"channel,omitempty"`
	Packages []Package `json:"packages,omitempty"`
	// Channels are extra channels for Packages.
	Channels []string `json:"channels,omitempty"`
	// EnvFile is an environment.yml in the build context.
	EnvFile *File `json:"env_file,omitempty"`
	Pos     Pos   `json:"pos"`
}

// UV is install.uv: the uv tool in the venv.
type UV struct {
	Pos Pos `json:"pos"`
}

// Pixi is install.pixi: the pixi tool, optionally with mirrors.
type Pixi struct {
	UseMirror bool   `json:"use_mirror,omitempty"`
	PyPIIndex string `json:"pypi_index,omitempty"`
	Pos       Pos    `json:"pos"`
}

// R is install.r_lang, install.r_packages, config.cran_mirror and
// config.rstudio_server.
type R struct {
	Packages   []Package `json:"packages,omitempty"`
	CRANMirror string    `json:"cran_mirror,omitempty"`
	RStudio    bool      `json:"rstudio,omitempty"`
	Pos        Pos       `json:"pos"`
}

// Julia is install.julia, install.julia_packages and config.julia_pkg_server.
type Julia struct {
	Packages  []Package `json:"packages,omitempty"`
	PkgServer string    `json:"pkg_server,omitempty"`
	Pos       Pos       `json:"pos"`
}

// Toolchain is install.rust, install.go, install.nodejs or install.codex.
type Toolchain struct {
	Version string `json:"version"`
	Pos     Pos    `json:"pos"`
}

// Download is io.http: a file fetched by BuildKit into DownloadDir.
type Download struct {
	URL string `json:"url"`
	// Checksum is "sha256:<hex>"; with it BuildKit verifies the file and
	// needs no network once it has the file.
	Checksum string `json:"checksum,omitempty"`
	// Filename defaults to the last element of the URL's path.
	Filename string `json:"filename,omitempty"`
	Pos      Pos    `json:"pos"`
}

// DownloadDir is where io.http puts files, as in envd v1.
const DownloadDir = "/home/envd/extra_source"

// Entrypoint is config.entrypoint: the image's entrypoint (non-dev images).
type Entrypoint struct {
	Args []string `json:"args"`
	Pos  Pos      `json:"pos"`
}

// Repo is config.repo, recorded as OCI labels.
type Repo struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	Pos         Pos    `json:"pos"`
}

// Owner is config.owner: who owns the files envd installs for the user.
type Owner struct {
	UID int `json:"uid"`
	GID int `json:"gid"`
	Pos Pos `json:"pos"`
}

// Resources are config.gpu and config.shm_size: settings of the running
// container, for `envd up`.
type Resources struct {
	// GPUs is the number of GPUs; -1 means all of them.
	GPUs int `json:"gpus,omitempty"`
	// ShmSizeMB is the size of /dev/shm in megabytes.
	ShmSizeMB int `json:"shm_size_mb,omitempty"`
	Pos       Pos `json:"pos"`
}
