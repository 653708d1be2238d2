// Command appsetrender renders an ApplicationSet's template and templatePatch for a list of
// generator parameters the way the Argo CD ApplicationSet controller does with goTemplate:
// text/template with the Sprig functions (less env, expandenv and getHostByName) plus
// `normalize`, the goTemplateOptions applied to every template, and every string value and
// map key of the template rendered on its own.
//
// Input (stdin, JSON): {"goTemplateOptions": [...], "template": {...}, "templatePatch": "...",
// "params": [{...}, ...]}. Output (stdout, JSON): [{"application": {...}, "patch": "..."}].
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

type request struct {
	GoTemplateOptions []string         `json:"goTemplateOptions"`
	Template          any              `json:"template"`
	TemplatePatch     string           `json:"templatePatch"`
	Params            []map[string]any `json:"params"`
}

type result struct {
	Application any    `json:"application"`
	Patch       string `json:"patch"`
}

var funcs = func() template.FuncMap {
	m := sprig.GenericFuncMap()
	delete(m, "env")
	delete(m, "expandenv")
	delete(m, "getHostByName")
	m["normalize"] = sanitizeName
	return m
}()

// sanitizeName is Argo CD's `normalize`.
func sanitizeName(name string) string {
	invalid := regexp.MustCompile("[^-a-z0-9.]")
	name = strings.ToLower(name)
	name = invalid.ReplaceAllString(name, "-")
	if len(name) > 253 {
		name = name[:253]
	}
	return strings.Trim(name, "-.")
}

func replace(tmpl string, params map[string]any, options []string) (string, error) {
	t := template.New("").Funcs(funcs)
	for _, o := range options {
		t = t.Option(o)
	}
	parsed, err := t.Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("failed to parse template %s: %w", tmpl, err)
	}
	var buf bytes.Buffer
	if err := parsed.Execute(&buf, params); err != nil {
		return "", fmt.Errorf("failed to execute go template %s: %w", tmpl, err)
	}
	return buf.String(), nil
}

func walk(node any, params map[string]any, options []string) (any, error) {
	switch v := node.(type) {
	case string:
		return replace(v, params, options)
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			r, err := walk(item, params, options)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for key, item := range v {
			k, err := replace(key, params, options)
			if err != nil {
				return nil, err
			}
			r, err := walk(item, params, options)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	default:
		return v, nil
	}
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "appsetrender: bad input:", err)
		os.Exit(2)
	}
	results := make([]result, 0, len(req.Params))
	for _, params := range req.Params {
		app, err := walk(req.Template, params, req.GoTemplateOptions)
		if err != nil {
			fmt.Fprintln(os.Stderr, "appsetrender:", err)
			os.Exit(1)
		}
		patch := ""
		if req.TemplatePatch != "" {
			patch, err = replace(req.TemplatePatch, params, req.GoTemplateOptions)
			if err != nil {
				fmt.Fprintln(os.Stderr, "appsetrender: templatePatch:", err)
				os.Exit(1)
			}
		}
		results = append(results, result{Application: app, Patch: patch})
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "appsetrender:", err)
		os.Exit(1)
	}
}
