// Command workload is the quickstart's guest workload: a static program the
// release puts at /usr/local/bin/workload. In the confidential VM it lists
// the encrypted model it was released with (its manifest) and serves a
// health check, standing in for a model server that would obtain the data
// key from the key authority after attestation.
//
// Usage: workload [-manifest /models/model.manifest.json] [-listen :8080]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	manifest := flag.String("manifest", "/models/model.manifest.json", "the encrypted model's manifest")
	listen := flag.String("listen", ":8080", "address of the health endpoint")
	once := flag.Bool("once", false, "print the model summary and exit")
	flag.Parse()
	summary := "no model manifest at " + *manifest
	if b, err := os.ReadFile(*manifest); err == nil {
		var m struct {
			ReleaseID string `json:"release_id"`
			Files     []struct {
				Path string `json:"path"`
				Size int64  `json:"size"`
			} `json:"files"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			log.Fatalf("workload: %s: %v", *manifest, err)
		}
		summary = fmt.Sprintf("model %s: %d encrypted files", m.ReleaseID, len(m.Files))
	}
	fmt.Println("cvmkit quickstart workload:", summary)
	if *once {
		return
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, summary) })
	log.Fatal(http.ListenAndServe(*listen, nil))
}
