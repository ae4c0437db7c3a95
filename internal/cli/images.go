package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"envd.dev/envd/internal/builderctx"
	"envd.dev/envd/internal/compile"
	"envd.dev/envd/internal/docker"
)

func newImagesCmd(st streams) *cobra.Command {
	c := &cobra.Command{Use: "images", Short: "Manage the images envd built"}
	var format string
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List envd's images",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return usageError{fmt.Errorf("-o %q: use table or json", format)}
			}
			dk, cur, err := imageEngine(c.Context())
			if err != nil {
				return err
			}
			defer closeDocker(cur, dk)
			imgs, err := dk.ListImages(c.Context(), compile.LabelVersion, false)
			if err != nil {
				return err
			}
			sort.Slice(imgs, func(i, j int) bool { return imgs[i].Created > imgs[j].Created })
			if format == "json" {
				if imgs == nil {
					imgs = []docker.ImageSummary{}
				}
				enc := json.NewEncoder(st.out)
				enc.SetIndent("", "  ")
				return enc.Encode(imgs)
			}
			tw := tabwriter.NewWriter(st.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tID\tSIZE\tCREATED\tPYTHON PACKAGES")
			for _, im := range imgs {
				tags := strings.Join(im.Tags, ",")
				if tags == "" {
					tags = "<none>"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", tags, shortID(im.ID), humanSize(im.Size),
					time.Unix(im.Created, 0).Format("2006-01-02 15:04"), im.Labels[compile.LabelPythonPackages])
			}
			return tw.Flush()
		},
	}
	ls.Flags().StringVarP(&format, "output", "o", "table", "table or json")

	rm := &cobra.Command{
		Use:   "rm IMAGE...",
		Short: "Remove images",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("name at least one image")}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			dk, cur, err := imageEngine(c.Context())
			if err != nil {
				return err
			}
			defer closeDocker(cur, dk)
			for _, ref := range args {
				img, err := dk.InspectImage(c.Context(), ref)
				if err != nil {
					return fmt.Errorf("image %s: %w", ref, err)
				}
				if img.Labels[compile.LabelVersion] == "" {
					return fmt.Errorf("%s was not built by envd; remove it with docker rmi", ref)
				}
				if err := dk.RemoveImage(c.Context(), ref); err != nil {
					return err
				}
				fmt.Fprintf(st.out, "removed %s\n", ref)
			}
			_, err = pruneHandover(c.Context(), cur, dk)
			return err
		},
	}
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove envd's untagged images, left behind when a rebuild moved a tag, and the hand-over cache's blobs no image needs",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			dk, cur, err := imageEngine(c.Context())
			if err != nil {
				return err
			}
			defer closeDocker(cur, dk)
			imgs, err := dk.ListImages(c.Context(), compile.LabelVersion, true)
			if err != nil {
				return err
			}
			var freed int64
			n := 0
			for _, im := range imgs {
				if err := dk.RemoveImage(c.Context(), im.ID); err != nil {
					fmt.Fprintf(st.err, "envd: keeping %s: %v\n", shortID(im.ID), err)
					continue
				}
				n++
				freed += im.Size
			}
			cache, err := pruneHandover(c.Context(), cur, dk)
			fmt.Fprintf(st.out, "removed %d images, %s; freed %s of the hand-over cache\n", n, humanSize(freed), humanSize(cache))
			return err
		},
	}
	c.AddCommand(ls, rm, prune)
	return c
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// imageEngine is the engine holding the images of the selected context:
// Podman, an ssh context's server, else the local Docker (a cluster's are
// in its registry). Close it with closeDocker.
func imageEngine(ctx context.Context) (*docker.Client, builderctx.Context, error) {
	cur, err := selectedContext()
	if err != nil {
		return nil, cur, err
	}
	dk, err := dockerFor(ctx, cur)
	return dk, cur, err
}
