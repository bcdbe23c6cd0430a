package cli

// skein acl: create, list and delete ACLs, with kafka-acls.sh's flags.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

func aclCommand() *cli.Command {
	resourceFlags := []cli.Flag{
		stringSliceFlag("topic", "a topic (or, with --resource-pattern-type prefixed, a topic name prefix; * for every topic); repeat for several"),
		stringSliceFlag("group", "a consumer group (or prefix; * for every group); repeat for several"),
		stringSliceFlag("transactional-id", "a transactional id (or prefix; * for every one); repeat for several"),
		boolFlag("cluster", "the cluster resource (kafka-cluster)", false),
	}
	bindingFlags := append(slices.Clone(resourceFlags),
		stringSliceFlag("allow-principal", "principal to allow, User:name (User:* for everyone); repeat for several"),
		stringSliceFlag("deny-principal", "principal to deny, User:name; repeat for several"),
		stringSliceFlag("allow-host", "host the allowed principals connect from (default *: any)"),
		stringSliceFlag("deny-host", "host the denied principals connect from (default *: any)"),
		stringSliceFlag("operation", "Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All; repeat for several"),
	)
	common := func(pattern string, flags ...cli.Flag) []cli.Flag {
		return withCommon(append(flags,
			stringFlag("resource-pattern-type", "how resource names match: "+pattern, ""),
			bootstrapServerFlag(),
			durationFlag("timeout", "give up on the request after this long", 30*time.Second),
		)...)
	}
	return &cli.Command{
		Name:  "acl",
		Usage: "create, list and delete ACLs (like kafka-acls.sh); they apply when brokers run with --authorizer acl",
		Subcommands: []*cli.Command{
			{
				Name:  "create",
				Usage: "add ACLs: every principal x host x resource x operation given",
				Description: "Example: let alice produce to every topic whose name starts with orders-:\n" +
					"   skein acl create --allow-principal User:alice --operation Write --operation Describe \\\n" +
					"       --topic orders- --resource-pattern-type prefixed",
				Flags:  common("literal (default) or prefixed", bindingFlags...),
				Action: runACLCreate,
			},
			{
				Name:  "list",
				Usage: "list ACLs; with --topic/--group/... only those that apply to it (pattern match)",
				Flags: common("match (default with a resource: the ACLs that apply to it), any, literal or prefixed",
					append(slices.Clone(resourceFlags), stringFlag("principal", "only this principal's ACLs", ""))...),
				Action: runACLList,
			},
			{
				Name:   "delete",
				Usage:  "remove the ACLs matching the flags (as kafka-acls.sh --remove): unset flags match anything",
				Flags:  common("literal (default), prefixed, any or match", bindingFlags...),
				Action: runACLDelete,
			},
		},
	}
}

// aclBuilder maps the binding flags onto a kadm builder; forCreate checks
// what a creation needs.
func aclBuilder(c *cli.Context, forCreate bool) (*kadm.ACLBuilder, error) {
	b := kadm.NewACLs()
	allow, deny := c.StringSlice("allow-principal"), c.StringSlice("deny-principal")
	for _, p := range append(slices.Clone(allow), deny...) {
		if kind, name, ok := strings.Cut(p, ":"); !ok || kind == "" || name == "" {
			return nil, fmt.Errorf("principal %q is not TYPE:NAME (User:alice)", p)
		}
	}
	if forCreate && len(allow)+len(deny) == 0 {
		return nil, errors.New("give --allow-principal or --deny-principal (User:name)")
	}
	b.MaybeAllow(allow...).MaybeDeny(deny...)
	b.MaybeAllowHosts(c.StringSlice("allow-host")...).MaybeDenyHosts(c.StringSlice("deny-host")...)
	// No host given: "*" for a creation, any host for a deletion (kadm
	// wants the hosts set whenever principals are).
	var anyHost []string
	if forCreate {
		anyHost = []string{"*"}
	}
	if !forCreate && len(allow)+len(deny) == 0 {
		// Neither given: every principal, allowed or denied.
		b.Allow().Deny()
		allow, deny = []string{""}, []string{""}
	}
	if len(allow) > 0 && len(c.StringSlice("allow-host")) == 0 {
		b.AllowHosts(anyHost...)
	}
	if len(deny) > 0 && len(c.StringSlice("deny-host")) == 0 {
		b.DenyHosts(anyHost...)
	}
	var ops []kadm.ACLOperation
	for _, o := range c.StringSlice("operation") {
		op, err := kmsg.ParseACLOperation(o)
		if err != nil || op == kmsg.ACLOperationUnknown || op == kmsg.ACLOperationAny {
			return nil, fmt.Errorf("--operation %q: use Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All", o)
		}
		ops = append(ops, op)
	}
	if forCreate && len(ops) == 0 {
		return nil, errors.New("give at least one --operation (Read, Write, Describe, ..., All)")
	}
	if len(ops) == 0 {
		ops = []kadm.ACLOperation{kmsg.ACLOperationAny}
	}
	b.Operations(ops...)
	if err := aclResources(c, b); err != nil {
		return nil, err
	}
	if !b.HasResource() {
		if forCreate {
			return nil, errors.New("give the resource: --topic, --group, --transactional-id or --cluster")
		}
		b.AnyResource()
	}
	pattern, err := aclPattern(c, kmsg.ACLResourcePatternTypeLiteral)
	if err != nil {
		return nil, err
	}
	if forCreate && pattern != kmsg.ACLResourcePatternTypeLiteral && pattern != kmsg.ACLResourcePatternTypePrefixed {
		return nil, fmt.Errorf("--resource-pattern-type %s: new ACLs are literal or prefixed", pattern)
	}
	b.ResourcePatternType(pattern)
	return b, nil
}

func aclResources(c *cli.Context, b *kadm.ACLBuilder) error {
	b.MaybeTopics(c.StringSlice("topic")...).MaybeGroups(c.StringSlice("group")...)
	b.MaybeTransactionalIDs(c.StringSlice("transactional-id")...).MaybeClusters(c.Bool("cluster"))
	return nil
}

func aclPattern(c *cli.Context, def kmsg.ACLResourcePatternType) (kmsg.ACLResourcePatternType, error) {
	s := c.String("resource-pattern-type")
	if s == "" {
		return def, nil
	}
	p, err := kmsg.ParseACLResourcePatternType(s)
	if err != nil || p == kmsg.ACLResourcePatternTypeUnknown {
		return 0, fmt.Errorf("--resource-pattern-type %q: use literal, prefixed, any or match", s)
	}
	return p, nil
}

func runACLCreate(c *cli.Context) error {
	b, err := aclBuilder(c, true)
	if err != nil {
		return err
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	results, err := adm.CreateACLs(ctx, b)
	if err != nil {
		return fmt.Errorf("create ACLs: %w", err)
	}
	var failed []string
	t := newTable(c.App.Writer)
	fmt.Fprintln(t, "PRINCIPAL\tHOST\tOPERATION\tPERMISSION\tRESOURCE\tNAME\tPATTERN\tRESULT")
	for _, r := range results {
		res := "created"
		if r.Err != nil {
			res = aclErr(r.Err, r.ErrMessage)
			failed = append(failed, res)
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Principal, r.Host, aclName(r.Operation.String()),
			aclName(r.Permission.String()), aclName(r.Type.String()), r.Name, aclName(r.Pattern.String()), res)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d ACLs not created: %s", len(failed), len(results), failed[0])
	}
	return nil
}

func runACLList(c *cli.Context) error {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	var kinds []kmsg.ACLResourceType
	var name string
	for _, f := range []struct {
		flag string
		rt   kmsg.ACLResourceType
	}{{"topic", kmsg.ACLResourceTypeTopic}, {"group", kmsg.ACLResourceTypeGroup}, {"transactional-id", kmsg.ACLResourceTypeTransactionalId}} {
		switch v := c.StringSlice(f.flag); len(v) {
		case 0:
		case 1:
			kinds, name = append(kinds, f.rt), v[0]
		default:
			return fmt.Errorf("skein acl list takes one --%s", f.flag)
		}
	}
	if c.Bool("cluster") {
		kinds, name = append(kinds, kmsg.ACLResourceTypeCluster), "kafka-cluster"
	}
	if len(kinds) > 1 {
		return errors.New("skein acl list takes at most one resource (--topic, --group, --transactional-id or --cluster)")
	}
	if len(kinds) == 1 {
		req.ResourceType, req.ResourceName, req.ResourcePatternType = kinds[0], &name, kmsg.ACLResourcePatternTypeMatch
	}
	pattern, err := aclPattern(c, req.ResourcePatternType)
	if err != nil {
		return err
	}
	req.ResourcePatternType = pattern
	if p := c.String("principal"); p != "" {
		req.Principal = &p
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	cl, err := newClient(c, log)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("list ACLs: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("list ACLs: %s", aclErr(err, deref(resp.ErrorMessage)))
	}
	return writeACLs(c.App.Writer, resp.Resources)
}

// writeACLs writes one row per ACL, grouped by resource as the broker
// returned them.
func writeACLs(w io.Writer, resources []kmsg.DescribeACLsResponseResource) error {
	t := newTable(w)
	fmt.Fprintln(t, "RESOURCE\tNAME\tPATTERN\tPRINCIPAL\tHOST\tOPERATION\tPERMISSION")
	for _, r := range resources {
		for _, a := range r.ACLs {
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", aclName(r.ResourceType.String()), r.ResourceName,
				aclName(r.ResourcePatternType.String()), a.Principal, a.Host, aclName(a.Operation.String()),
				aclName(a.PermissionType.String()))
		}
	}
	return t.Flush()
}

func runACLDelete(c *cli.Context) error {
	b, err := aclBuilder(c, false)
	if err != nil {
		return err
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	results, err := adm.DeleteACLs(ctx, b)
	if err != nil {
		return fmt.Errorf("delete ACLs: %w", err)
	}
	t := newTable(c.App.Writer)
	fmt.Fprintln(t, "RESOURCE\tNAME\tPATTERN\tPRINCIPAL\tHOST\tOPERATION\tPERMISSION\tRESULT")
	deleted := 0
	var failed error
	for _, r := range results {
		if r.Err != nil {
			failed = fmt.Errorf("delete ACLs: %s", aclErr(r.Err, r.ErrMessage))
			continue
		}
		for _, d := range r.Deleted {
			res := "deleted"
			if d.Err != nil {
				res = aclErr(d.Err, d.ErrMessage)
			} else {
				deleted++
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", aclName(d.Type.String()), d.Name, aclName(d.Pattern.String()),
				d.Principal, d.Host, aclName(d.Operation.String()), aclName(d.Permission.String()), res)
		}
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if failed != nil {
		return failed
	}
	if deleted == 0 {
		fmt.Fprintln(c.App.ErrWriter, "no ACL matched: nothing deleted (see `skein acl list`)")
	}
	return nil
}

// aclName is an enum's name as kafka-acls.sh prints it (TRANSACTIONAL_ID
// -> TransactionalId).
func aclName(s string) string {
	parts := strings.Split(strings.ToLower(s), "_")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}

func aclErr(err error, msg string) string {
	if msg != "" {
		return err.Error() + ": " + msg
	}
	return err.Error()
}
