// Command nocgo is the smallest program that uses kadre's client library.
// client's TestNoCgo builds it with CGO_ENABLED=0: an application that
// imports the client must never need cgo (LMDB is the node's).
package main

import (
	"fmt"
	"os"

	"github.com/kadre/kadre/client"
)

func main() {
	c, err := client.Open(client.Options{Home: os.Getenv("KADRE_HOME")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	fmt.Println(c.Identity())
}
