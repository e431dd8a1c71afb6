// Package kubeconfig turns a node's admin.conf into the kubeconfig entries
// kinc owns and merges them into, or removes them from, a user's kubeconfig
// file without disturbing anything else in it.
//
// A cluster NAME owns one cluster, one user and one context in the file, all
// three named ContextName(NAME) = "kinc-NAME". Nothing else is ever changed,
// except current-context and, when the last entry of a list goes, that list
// becoming null as kubectl writes it.
//
// The file is edited as a YAML node tree, not decoded into structs, so other
// entries keep their order, unknown fields and comments, and the encoder
// reuses the file's indentation and sequence style (kubectl's compact
// "clusters:\n- cluster:" or the indented form).
//
// Guarantees:
//   - Merge then Remove of the same cluster leaves a file byte for byte as it
//     was when the file was in the layout this package writes: any file written
//     by kubectl or by kinc, or by hand with two-space indents, lists compact or
//     indented, comments included. A file laid out otherwise (other indents,
//     blank lines) keeps all its content but is reformatted the first time
//     kinc writes it. Top-level lists Merge had to add stay behind as null.
//   - current-context: Merge sets it to kinc-NAME and records what it was
//     before (a value, or that the key was absent) in an extension of the
//     kinc-NAME context, which kubectl keeps when it rewrites the file. Remove
//     restores that value only if current-context is still kinc-NAME; if the
//     user switched meanwhile their choice stands. When the recorded context
//     no longer exists current-context becomes "" (as kind and kubectl leave
//     it). Records chain: create A, create B, delete A, delete B restores the
//     context that was current before A.
//   - The file is never left half written: each change takes the lock file
//     <path>.lock (the one kubectl takes), writes a temporary file in the same
//     directory and renames it over the original. The result has mode 0600
//     less any permission the original lacked.
//   - A file that does not parse is never written; the error names the file
//     and the line.
package kubeconfig
