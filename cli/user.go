package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/skein-io/skein/internal/security/sasl"
)

// userCommand manages SCRAM users (AlterUserScramCredentials and
// DescribeUserScramCredentials, KIP-554), as kafka-configs.sh
// --entity-type users --alter --add-config 'SCRAM-SHA-512=[password=...]'
// and --describe do. The password is salted and iterated here (kadm); the
// cluster stores only the derived keys.
func userCommand() *cli.Command {
	return &cli.Command{
		Name:  "user",
		Usage: "create, list and delete SASL/SCRAM users (their credentials live in the metadata log)",
		Subcommands: []*cli.Command{
			{
				Name: "create",
				Usage: "create a user, or change its password, for one SCRAM mechanism " +
					"(PLAIN logins check against the same credentials)",
				ArgsUsage: "NAME",
				Flags: adminFlags(
					stringFlag("mechanism", "SCRAM-SHA-256 or SCRAM-SHA-512", "SCRAM-SHA-512"),
					stringFlag("password", "the password (visible in ps: prefer --password-file or the prompt)", ""),
					stringFlag("password-file", "read the password from the first line of this file (- for stdin)", ""),
					intFlag("iterations", "SCRAM iterations, 4096 to 16384", sasl.MinIterations),
				),
				Action: runUserCreate,
			},
			{
				Name:   "list",
				Usage:  "list the users and their SCRAM mechanisms",
				Flags:  adminFlags(),
				Action: runUserList,
			},
			{
				Name:      "delete",
				Usage:     "delete a user's credentials (every mechanism, or only --mechanism); its next login fails",
				ArgsUsage: "NAME",
				Flags:     adminFlags(stringFlag("mechanism", "delete only this mechanism's credential", "")),
				Action:    runUserDelete,
			},
		},
	}
}

// userArg returns the single NAME argument.
func userArg(c *cli.Context) (string, error) {
	switch c.NArg() {
	case 0:
		return "", fmt.Errorf("missing user NAME: skein user %s NAME", c.Command.Name)
	case 1:
		if c.Args().First() == "" {
			return "", errors.New("the user name is empty")
		}
		return c.Args().First(), nil
	}
	return "", fmt.Errorf("too many arguments %q: skein user %s takes one user NAME", c.Args().Slice(), c.Command.Name)
}

// scramMechanism parses --mechanism for kadm.
func scramMechanism(s string) (kadm.ScramMechanism, error) {
	m, err := sasl.ParseMechanism(s)
	if err != nil || m.ScramType() == 0 {
		return 0, fmt.Errorf("--mechanism %q: use SCRAM-SHA-256 or SCRAM-SHA-512", s)
	}
	return kadm.ScramMechanism(m.ScramType()), nil
}

// userPassword reads the password from --password, --password-file or a
// prompt on the terminal.
func userPassword(c *cli.Context) (string, error) {
	if c.IsSet("password") && c.IsSet("password-file") {
		return "", errors.New("give --password or --password-file, not both")
	}
	if c.IsSet("password") {
		if c.String("password") == "" {
			return "", errors.New("--password is empty")
		}
		return c.String("password"), nil
	}
	var r io.Reader
	switch path := c.String("password-file"); {
	case path == "-":
		r = c.App.Reader
	case path != "":
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		defer f.Close()
		r = f
	case term.IsTerminal(int(os.Stdin.Fd())):
		fmt.Fprint(c.App.ErrWriter, "Password: ")
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(c.App.ErrWriter)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		if len(b) == 0 {
			return "", errors.New("the password is empty")
		}
		return string(b), nil
	default:
		return "", errors.New("no password: give --password, --password-file, or run on a terminal to be asked")
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("the password file's first line is empty")
	}
	return line, nil
}

func runUserCreate(c *cli.Context) error {
	name, err := userArg(c)
	if err != nil {
		return err
	}
	mech, err := scramMechanism(c.String("mechanism"))
	if err != nil {
		return err
	}
	iterations, err := int32Value(c, "iterations")
	if err != nil {
		return err
	}
	if iterations < sasl.MinIterations || iterations > sasl.MaxIterations {
		return fmt.Errorf("--iterations %d: must be between %d and %d", iterations, sasl.MinIterations, sasl.MaxIterations)
	}
	password, err := userPassword(c)
	if err != nil {
		return err
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: name, Mechanism: mech, Iterations: iterations, Password: password}})
	if err == nil {
		err = res[name].Err
	}
	if err != nil {
		return fmt.Errorf("create user %s: %w%s", name, err, detail(res[name].ErrMessage))
	}
	fmt.Fprintf(c.App.Writer, "Set the %s credential of user %s (%d iterations).\n", mech, name, iterations)
	return nil
}

func runUserList(c *cli.Context) error {
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	users, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	t := newTable(c.App.Writer)
	fmt.Fprintln(t, "USER\tMECHANISM\tITERATIONS")
	for _, u := range users.Sorted() {
		if u.Err != nil {
			fmt.Fprintf(t, "%s\t%s\t-\n", u.User, u.Err)
			continue
		}
		for _, ci := range u.CredInfos {
			fmt.Fprintf(t, "%s\t%s\t%d\n", u.User, ci.Mechanism, ci.Iterations)
		}
	}
	return t.Flush()
}

func runUserDelete(c *cli.Context) error {
	name, err := userArg(c)
	if err != nil {
		return err
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	var dels []kadm.DeleteSCRAM
	if c.IsSet("mechanism") {
		mech, err := scramMechanism(c.String("mechanism"))
		if err != nil {
			return err
		}
		dels = append(dels, kadm.DeleteSCRAM{User: name, Mechanism: mech})
	} else {
		described, err := adm.DescribeUserSCRAMs(ctx, name)
		if err == nil {
			err = described[name].Err
		}
		if errors.Is(err, kerr.ResourceNotFound) {
			return fmt.Errorf("user %s has no credentials; see the users with `skein user list`", name)
		}
		if err != nil {
			return fmt.Errorf("describe user %s: %w", name, err)
		}
		for _, ci := range described[name].CredInfos {
			dels = append(dels, kadm.DeleteSCRAM{User: name, Mechanism: ci.Mechanism})
		}
	}
	res, err := adm.AlterUserSCRAMs(ctx, dels, nil)
	if err == nil {
		err = res[name].Err
	}
	if errors.Is(err, kerr.ResourceNotFound) {
		return fmt.Errorf("user %s has no %s credential; see the users with `skein user list`", name, c.String("mechanism"))
	}
	if err != nil {
		return fmt.Errorf("delete user %s: %w%s", name, err, detail(res[name].ErrMessage))
	}
	fmt.Fprintf(c.App.Writer, "Deleted %d credential(s) of user %s.\n", len(dels), name)
	return nil
}
