package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/policy"
)

// cmdWriter lets others write under a prefix: `kadre writer add`,
// `revoke` and `list`.
func cmdWriter(ctx context.Context, e *env, args []string) error {
	const use = "kadre writer add -to <identity> -path </prefix> | revoke -to <identity> | list"
	if len(args) == 0 {
		return withHint(badUsage("missing subcommand (add, revoke, list)"), "usage: %s", use)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(e.stdout, "usage: %s\n\nLets others write files under a prefix of yours (add), revokes them (revoke), lists them (list). Run `kadre writer add -h` for the flags of each.\n", use)
		return errHelp
	case "add":
		return cmdWriterAdd(e, args[1:])
	case "revoke":
		return cmdWriterRevoke(ctx, e, args[1:])
	case "list":
		return cmdWriterList(e, args[1:])
	}
	return withHint(badUsage("unknown subcommand %q", args[0]), "usage: %s", use)
}

func cmdWriterAdd(e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "writer add", "-to <identity> -path </prefix>",
		"Lets another identity write files under a prefix of yours: prints a writer certificate to hand over (kadre encrypt -writer). The writer needs no secret of yours and cannot read what others wrote unless granted. Works offline.")
	u.bindHome(fs, e)
	u.bindJSON(fs)
	to := fs.String("to", "", "the writer's identity (kadre1…)")
	path := fs.String("path", "", "the prefix the writer may write under")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if err := missing(fs, map[string]bool{"-to": *to == "", "-path": *path == ""}); err != nil {
		return err
	}
	writer, prefix, err := parseTarget(*to, *path)
	if err != nil {
		return err
	}
	c, err := u.open(e)
	if err != nil {
		return err
	}
	defer c.Close()
	cert, err := c.AddWriter(writer, prefix)
	if err != nil {
		return err
	}
	if u.json {
		return printJSON(e.stdout, map[string]string{"writer": writer.String(), "prefix": prefix.String(), "certificate": cert.String()})
	}
	fmt.Fprintln(e.stdout, cert)
	fmt.Fprintf(e.stderr, "kadre: %s may now write under %s: hand them the certificate above (kadre encrypt -writer …)\n", shortID(writer.String()), prefix)
	return nil
}

func cmdWriterRevoke(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "writer revoke", "-to <identity>",
		"Revokes every writer certificate of an identity: readers refuse its files from now on, old ones included. Republishes your holder maps with the writer listed as revoked.")
	u.bindHome(fs, e)
	u.bindNetwork(fs)
	u.bindJSON(fs)
	to := fs.String("to", "", "the writer's identity (kadre1…)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if err := missing(fs, map[string]bool{"-to": *to == ""}); err != nil {
		return err
	}
	writer, err := policy.ParseIdentity(*to)
	if err != nil {
		return err
	}
	c, err := u.open(e)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.RevokeWriter(ctx, writer)
	if err != nil {
		return err
	}
	if u.json {
		failed := map[string]string{}
		for r, err := range res.Failed {
			failed[r] = err.Error()
		}
		return printJSON(e.stdout, map[string]any{"maps": res.Maps, "failed": failed})
	}
	fmt.Fprintf(e.stdout, "revoked writer %s: %s now list it\n", shortID(writer.String()), plural(res.Maps, "recipient's holder map", "recipients' holder maps"))
	for r, err := range res.Failed {
		fmt.Fprintf(e.stdout, "  %s: %v\n", shortID(r), err)
	}
	if len(res.Failed) > 0 {
		return withHint(fmt.Errorf("%d holder maps were not republished", len(res.Failed)), "run `kadre writer revoke` again when the network is reachable")
	}
	return nil
}

func cmdWriterList(e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "writer list", "", "Lists the writer certificates you issued.")
	u.bindHome(fs, e)
	u.bindJSON(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	c, err := u.open(e)
	if err != nil {
		return err
	}
	defer c.Close()
	ws, err := c.Writers()
	if err != nil {
		return err
	}
	if u.json {
		if ws == nil {
			ws = []client.WriterStatus{}
		}
		return printJSON(e.stdout, ws)
	}
	if len(ws) == 0 {
		fmt.Fprintln(e.stdout, "no writers yet (kadre writer add -to … -path …)")
		return nil
	}
	return writerTable(e.stdout, ws)
}

func writerTable(w io.Writer, ws []client.WriterStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "writer\tprefix\tissued\tstate")
	for _, s := range ws {
		state := "active"
		switch {
		case s.Revoked:
			state = "revoked"
		case s.Superseded:
			state = "superseded (epoch rotated)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", shortID(s.Writer), s.Prefix, s.Issued.Local().Format("2006-01-02 15:04"), state)
	}
	return tw.Flush()
}
