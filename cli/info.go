package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/kinc-dev/kinc/runtime"
)

// infoRow is one runtime as `kinc info` shows it.
type infoRow struct {
	Name      string        `json:"name"`
	Reachable bool          `json:"reachable"`
	Selected  bool          `json:"selected"`
	Sockets   []string      `json:"sockets"`
	Info      *runtime.Info `json:"info,omitempty"`
	Error     string        `json:"error,omitempty"`
	// Preflight is what the host lacks for rootless nodes; for a rootful
	// runtime, what only rootless would need comes as notes.
	Preflight runtime.Report `json:"preflight,omitempty"`
}

func infoCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "show what each container runtime on this host answers, and which one create would use",
		Flags: []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "json for machine-readable output"}},
		Action: func(c *cli.Context) error {
			results, err := runtime.Probe(c.Context)
			if err != nil {
				return err
			}
			rows := make([]infoRow, 0, len(results))
			selected := false
			for _, r := range results {
				row := infoRow{Name: r.Name, Sockets: r.Sockets, Info: r.Info, Reachable: r.Info != nil}
				if r.Err != nil {
					row.Error = r.Err.Error()
				}
				if r.Info != nil {
					if row.Preflight, err = runtime.Preflight(*r.Info); err != nil {
						return err
					}
				}
				// create takes --runtime, else the first that answers.
				if !selected && row.Reachable && (e.runtime == "" || e.runtime == r.Name) {
					row.Selected, selected = true, true
				}
				rows = append(rows, row)
			}
			if c.String("output") == "json" {
				return printAs(e, "json", rows)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUNTIME\tREACHABLE\tVERSION\tROOTLESS\tCGROUP\tDRIVER\tLIMITS (mem/pids/cpu)\tSOCKET")
			for _, r := range rows {
				name := r.Name
				if r.Selected {
					name += " *"
				}
				if r.Info == nil {
					fmt.Fprintf(tw, "%s\tno\t-\t-\t-\t-\t-\t%v\n", name, r.Sockets)
					continue
				}
				i := r.Info
				fmt.Fprintf(tw, "%s\tyes\t%s\t%t\tv%d\t%s\t%t/%t/%t\t%s\n", name, i.Version, i.Rootless, i.CgroupVersion, i.CgroupDriver, i.MemoryLimit, i.PidsLimit, i.CPUShares, i.Socket)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, r := range rows {
				if r.Error != "" {
					fmt.Fprintf(e.stdout, "\n%s: %s\n", r.Name, r.Error)
				}
			}
			printPreflight(e.stdout, rows)
			if !selected {
				return cli.Exit("no usable container runtime: start one of the above (see the errors for how)", 1)
			}
			fmt.Fprintln(e.stdout, "\n* used by `kinc create cluster`")
			return nil
		},
	}
}

// printPreflight shows, per reachable runtime, each preflight check on one
// line: a rootless runtime's errors are what create would refuse. Runtimes
// whose reports are the same (the host is one) share a section.
func printPreflight(w io.Writer, rows []infoRow) {
	done := make([]bool, len(rows))
	for i, r := range rows {
		if done[i] || r.Info == nil || len(r.Preflight) == 0 {
			continue
		}
		names := []string{r.Name}
		for j := i + 1; j < len(rows); j++ {
			o := rows[j]
			if o.Info != nil && o.Info.Rootless == r.Info.Rootless && slices.Equal(o.Preflight, r.Preflight) {
				names, done[j] = append(names, o.Name), true
			}
		}
		mode := "rootful: notes are what rootless would need"
		if r.Info.Rootless {
			mode = "rootless: create refuses while an error remains"
		}
		fmt.Fprintf(w, "\nPREFLIGHT %s (%s)\n", strings.Join(names, ", "), mode)
		for _, c := range r.Preflight {
			fmt.Fprintf(w, "  %-8s %s\n", c.Level, c)
		}
	}
}
