package main

import (
	"errors"
	"flag"
	"io"
	"io/fs"

	"github.com/keel-ai/keel/internal/config"
)

// configFlags are the flags every command that reads the config shares.
// Layering: flags override environment variables, which override keel.yaml.
type configFlags struct {
	path, listen, dataDir, logLevel string
}

func (f *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.path, "config", "", "config file (env KEEL_CONFIG; default ./keel.yaml if it exists)")
	fs.StringVar(&f.listen, "listen", "", "address to serve on (env KEEL_LISTEN; default 127.0.0.1:8080)")
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory (env KEEL_DATA_DIR; default ./keel-data)")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (env KEEL_LOG_LEVEL)")
}

// load builds the validated config from the three layers.
func (f *configFlags) load() (config.Config, error) {
	path := first(f.path, env("KEEL_CONFIG"))
	explicit := path != ""
	if !explicit {
		path = "keel.yaml"
	}
	cfg, err := config.Load(path, lookupEnv)
	if err != nil && (explicit || !errors.Is(err, fs.ErrNotExist)) {
		return cfg, err
	}
	cfg.Listen = first(f.listen, env("KEEL_LISTEN"), cfg.Listen)
	cfg.DataDir = first(f.dataDir, env("KEEL_DATA_DIR"), cfg.DataDir)
	cfg.Log.Level = first(f.logLevel, env("KEEL_LOG_LEVEL"), cfg.Log.Level)
	cfg.Log.Format = first(env("KEEL_LOG_FORMAT"), cfg.Log.Format)
	cfg.Defaults()
	return cfg, cfg.Validate()
}

func env(k string) string { v, _ := lookupEnv(k); return v }

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("keel "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
