package cli

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// The bash and zsh scripts ask kinc itself for candidates through urfave's
// hidden --generate-bash-completion flag, so they never go stale.
const bashCompletion = `# bash completion for kinc; load with: source <(kinc completion bash)
_kinc_complete() {
  local cur words
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == "-"* ]]; then
    words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o bashdefault -o default -F _kinc_complete kinc
`

const zshCompletion = `#compdef kinc
# zsh completion for kinc; load with: source <(kinc completion zsh)
_kinc() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} "$cur" --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ -n "${opts[1]}" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
if [[ "$(basename -- ${(%):-%x})" != "_kinc" ]]; then
  compdef _kinc kinc
fi
`

func completionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Action: func(c *cli.Context) error {
			switch shell := c.Args().First(); shell {
			case "bash":
				io.WriteString(e.stdout, bashCompletion)
			case "zsh":
				io.WriteString(e.stdout, zshCompletion)
			case "fish":
				script, err := c.App.ToFishCompletion()
				if err != nil {
					return fmt.Errorf("generating fish completion: %w", err)
				}
				io.WriteString(e.stdout, script)
			case "":
				return cli.Exit("missing shell: run kinc completion bash, zsh or fish", 2)
			default:
				return cli.Exit(fmt.Sprintf("unknown shell %q: kinc completes bash, zsh and fish", shell), 2)
			}
			return nil
		},
	}
}
