package sim

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// LoadConfig reads a YAML config file (see the package documentation for
// the format) and validates it. Errors name the offending field by its
// path, for example "profiles.flaky.faults[0].status".
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("sim: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("sim: %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses and validates a YAML config, as LoadConfig does.
func ParseConfig(data []byte) (Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Config{}, err
	}
	builtin := Builtin()
	cfg := Config{Default: builtin.Default}
	if len(doc.Content) == 0 { // empty file
		return builtin, nil
	}

	withBuiltin := true
	var defNode, profNode *yaml.Node
	err := eachField(doc.Content[0], "", func(key string, v *yaml.Node, path string) error {
		switch key {
		case "seed":
			return scalar(v, path, &cfg.Seed)
		case "log_limit":
			return scalar(v, path, &cfg.LogLimit)
		case "builtin":
			return scalar(v, path, &withBuiltin)
		case "default":
			defNode = v
		case "profiles":
			if v.Kind != yaml.MappingNode {
				return fmt.Errorf("%s: want a mapping of model name to profile (line %d)", path, v.Line)
			}
			profNode = v
		default:
			return unknownField(path, v)
		}
		return nil
	})
	if err != nil {
		return Config{}, err
	}

	d := profileDecoder{
		nodes:    map[string]*yaml.Node{},
		done:     map[string]Profile{},
		builtin:  builtin.Profiles,
		visiting: map[string]bool{},
	}
	var names []string
	if profNode != nil {
		for i := 0; i+1 < len(profNode.Content); i += 2 {
			k := profNode.Content[i]
			if _, dup := d.nodes[k.Value]; dup {
				return Config{}, fmt.Errorf("profiles.%s: defined twice (line %d)", k.Value, k.Line)
			}
			d.nodes[k.Value] = profNode.Content[i+1]
			names = append(names, k.Value)
		}
	}
	cfg.Profiles = make(map[string]Profile)
	if withBuiltin {
		for name, p := range builtin.Profiles {
			cfg.Profiles[name] = p
		}
	}
	for _, name := range names {
		p, err := d.named(name, "profiles."+name)
		if err != nil {
			return Config{}, err
		}
		cfg.Profiles[name] = p
	}
	switch {
	case defNode == nil:
	case defNode.Kind == yaml.ScalarNode:
		cfg.Default, err = d.named(defNode.Value, "default")
	default:
		cfg.Default, err = d.decode(defNode, "default")
	}
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// profileDecoder decodes profiles, resolving "base" references to other
// profiles in the file or to built-in ones.
type profileDecoder struct {
	nodes    map[string]*yaml.Node
	done     map[string]Profile
	builtin  map[string]Profile
	visiting map[string]bool
}

// named returns the profile called name; path names the reference.
func (d *profileDecoder) named(name, path string) (Profile, error) {
	if p, ok := d.done[name]; ok {
		return p, nil
	}
	n, ok := d.nodes[name]
	if !ok {
		if p, ok := d.builtin[name]; ok {
			return p, nil
		}
		return Profile{}, fmt.Errorf("%s: unknown profile %q", path, name)
	}
	if d.visiting[name] {
		return Profile{}, fmt.Errorf("%s: profile %q is its own base", path, name)
	}
	d.visiting[name] = true
	p, err := d.decode(n, "profiles."+name)
	d.visiting[name] = false
	if err != nil {
		return Profile{}, err
	}
	d.done[name] = p
	return p, nil
}

func (d *profileDecoder) decode(n *yaml.Node, path string) (Profile, error) {
	var p Profile
	if n.Kind != yaml.MappingNode {
		return p, fmt.Errorf("%s: want a profile mapping (line %d)", path, n.Line)
	}
	// The base applies first, wherever the key is.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "base" {
			continue
		}
		var name string
		if err := scalar(n.Content[i+1], path+".base", &name); err != nil {
			return p, err
		}
		base, err := d.named(name, path+".base")
		if err != nil {
			return p, err
		}
		p = base
		p.Faults = slices.Clone(base.Faults)
	}
	err := eachField(n, path, func(key string, v *yaml.Node, fp string) error {
		switch key {
		case "base":
			return nil
		case "headers":
			return decodeDist(v, fp, &p.Headers)
		case "ttft":
			return decodeDist(v, fp, &p.TTFT)
		case "tps":
			return decodeDist(v, fp, &p.TPS)
		case "tokens":
			return scalar(v, fp, &p.Tokens)
		case "reject_prefill":
			return scalar(v, fp, &p.RejectPrefill)
		case "restart":
			return scalar(v, fp, &p.Restart)
		case "faults":
			if v.Kind != yaml.SequenceNode {
				return fmt.Errorf("%s: want a list of faults (line %d)", fp, v.Line)
			}
			p.Faults = make([]Fault, len(v.Content))
			for i, item := range v.Content {
				if err := decodeFault(item, fmt.Sprintf("%s[%d]", fp, i), &p.Faults[i]); err != nil {
					return err
				}
			}
			return nil
		}
		return unknownField(fp, v)
	})
	return p, err
}

// decodeDist reads a distribution: a mapping {dist, value, min, max,
// median, sigma}, or a bare value as shorthand for a fixed one.
func decodeDist[T time.Duration | float64](n *yaml.Node, path string, d *Dist[T]) error {
	*d = Dist[T]{}
	if n.Kind == yaml.ScalarNode {
		return scalar(n, path, &d.Value)
	}
	return eachField(n, path, func(key string, v *yaml.Node, fp string) error {
		switch key {
		case "dist":
			return scalar(v, fp, (*string)(&d.Kind))
		case "value":
			return scalar(v, fp, &d.Value)
		case "min":
			return scalar(v, fp, &d.Min)
		case "max":
			return scalar(v, fp, &d.Max)
		case "median":
			return scalar(v, fp, &d.Median)
		case "sigma":
			return scalar(v, fp, &d.Sigma)
		}
		return unknownField(fp, v)
	})
}

func decodeFault(n *yaml.Node, path string, f *Fault) error {
	return eachField(n, path, func(key string, v *yaml.Node, fp string) error {
		switch key {
		case "name":
			return scalar(v, fp, &f.Name)
		case "kind":
			return scalar(v, fp, (*string)(&f.Kind))
		case "rate":
			return scalar(v, fp, &f.Rate)
		case "attempts":
			if v.Kind == yaml.ScalarNode {
				f.Attempts = make([]int, 1)
				return scalar(v, fp, &f.Attempts[0])
			}
			if v.Kind != yaml.SequenceNode {
				return fmt.Errorf("%s: want a list of attempt numbers (line %d)", fp, v.Line)
			}
			f.Attempts = make([]int, len(v.Content))
			for i, item := range v.Content {
				if err := scalar(item, fmt.Sprintf("%s[%d]", fp, i), &f.Attempts[i]); err != nil {
					return err
				}
			}
			return nil
		case "always":
			return scalar(v, fp, &f.Always)
		case "status":
			return scalar(v, fp, &f.Status)
		case "retry_after":
			return scalar(v, fp, &f.RetryAfter)
		case "retry_after_date":
			return scalar(v, fp, &f.RetryAfterDate)
		case "retry_after_ms":
			return scalar(v, fp, &f.RetryAfterMS)
		case "should_retry":
			var b bool
			f.ShouldRetry = &b
			return scalar(v, fp, &b)
		case "code":
			return scalar(v, fp, &f.Code)
		case "type":
			return scalar(v, fp, &f.Type)
		case "message":
			return scalar(v, fp, &f.Message)
		case "after":
			return scalar(v, fp, &f.After)
		case "for":
			return scalar(v, fp, &f.For)
		case "down":
			return scalar(v, fp, &f.Down)
		case "start":
			return scalar(v, fp, &f.Start)
		case "every":
			return scalar(v, fp, &f.Every)
		case "from_start":
			return scalar(v, fp, &f.FromStart)
		}
		return unknownField(fp, v)
	})
}

// eachField calls fn for every key of the mapping n, with the key's path.
func eachField(n *yaml.Node, path string, fn func(key string, v *yaml.Node, path string) error) error {
	if n.Kind != yaml.MappingNode {
		where := path
		if where == "" {
			where = "top level"
		}
		return fmt.Errorf("%s: want a mapping (line %d)", where, n.Line)
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		fp := k.Value
		if path != "" {
			fp = path + "." + k.Value
		}
		if seen[k.Value] {
			return fmt.Errorf("%s: set twice (line %d)", fp, k.Line)
		}
		seen[k.Value] = true
		if err := fn(k.Value, v, fp); err != nil {
			return err
		}
	}
	return nil
}

func unknownField(path string, v *yaml.Node) error {
	return fmt.Errorf("%s: unknown field (line %d)", path, v.Line)
}

// scalar decodes the scalar node n into dst, which points to a string,
// bool, int, int64, float64 or time.Duration.
func scalar(n *yaml.Node, path string, dst any) error {
	want := "a value"
	switch dst.(type) {
	case *string:
		want = "a string"
	case *bool:
		want = "true or false"
	case *int, *int64:
		want = "an integer"
	case *float64:
		want = "a number"
	case *time.Duration:
		want = `a duration such as "150ms" or "2s"`
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s: want %s (line %d)", path, want, n.Line)
	}
	bad := fmt.Errorf("%s: invalid value %s (line %d): want %s", path, strconv.Quote(n.Value), n.Line, want)
	switch dst := dst.(type) {
	case *string:
		*dst = n.Value
	case *time.Duration:
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return bad
		}
		*dst = d
	default:
		if err := n.Decode(dst); err != nil {
			return bad
		}
	}
	return nil
}
