// Command keel is a self-hosted AI gateway: one front door (OpenAI Chat
// Completions and Responses, Anthropic Messages, embeddings) to every model
// vendor, with failover, mid-stream continuation, recording and a built-in
// vendor simulator.
//
//	keel [serve]   run the server (the default)
//	keel sim       run the vendor simulator on its own
//	keel drill     chaos drill: keel against a failing simulated vendor
//	keel keys      create, list and revoke API keys
//	keel version   print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "keel:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, stdout, stderr)
	case "sim":
		return simulate(ctx, args, stdout, stderr)
	case "keys":
		return keys(ctx, args, stdout, stderr)
	case "drill":
		return drill(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "keel", version)
		return nil
	case "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage: keel [command] [flags]

commands:
  serve     run the gateway (default)
  sim       run the vendor simulator
  keys      manage API keys: keys create --name NAME | keys list | keys revoke ID
  drill     chaos drill: keel against a failing simulated vendor, every answer judged
  version   print the version

Run "keel COMMAND -h" for a command's flags.`

// lookupEnv is the one door to the environment (STYLE.md: environment
// variables are read only in cmd/).
func lookupEnv(k string) (string, bool) { return os.LookupEnv(k) }
