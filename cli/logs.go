package cli

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/kinc-dev/kinc/cluster"
)

// withSubcommand adds sub to cmd: `export logs` joins the export command
// that cluster.go defines.
func withSubcommand(cmd, sub *cli.Command) *cli.Command {
	cmd.Subcommands = append(cmd.Subcommands, sub)
	return cmd
}

func exportLogsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "write a cluster's logs (journals, containers, runtime inspect) to DIR (default: a new temporary directory)",
		ArgsUsage: "[DIR]",
		Flags:     []cli.Flag{nameFlag},
		Action: func(c *cli.Context) error {
			args, err := positionalArgs(c)
			if err != nil {
				return err
			}
			if len(args) > 1 {
				return cli.Exit("name at most one directory: kinc export logs [DIR]", 2)
			}
			rt, err := openRuntime(c.Context, e)
			if err != nil {
				return err
			}
			defer rt.Close()
			name := clusterName(e, c)
			var dir string
			if len(args) == 1 {
				dir = args[0]
			} else {
				if dir, err = os.MkdirTemp("", "kinc-logs-"+name+"-"); err != nil {
					return fmt.Errorf("creating logs directory: %w", err)
				}
			}
			if !e.quiet {
				fmt.Fprintf(e.stderr, "Exporting logs for cluster %q ...\n", name)
			}
			report, err := cluster.ExportLogs(c.Context, rt, name, dir, versionText())
			if err != nil {
				if len(args) == 0 {
					os.Remove(dir) // still empty: the cluster was not found
				}
				return err
			}
			if len(report.Failed) > 0 && !e.quiet {
				fmt.Fprintf(e.stderr, "Some logs could not be collected (the reason is at the end of each file):\n")
				for _, f := range report.Failed {
					fmt.Fprintf(e.stderr, "  %s\n", f)
				}
			}
			fmt.Fprintln(e.stdout, report.Dir)
			return nil
		},
	}
}
