package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite"
)

func main() {
	db, err := sql.Open("sqlite", "file:"+os.Args[1]+"?mode=ro")
	if err != nil {
		panic(err)
	}
	db.SetMaxOpenConns(1)
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		stmt := strings.TrimSpace(sc.Text())
		if stmt == "" || strings.HasPrefix(stmt, "--") {
			fmt.Println(stmt)
			continue
		}
		for i := 0; i < 3; i++ {
			start := time.Now()
			var n int
			if err := db.QueryRow(stmt).Scan(&n); err != nil {
				fmt.Println("ERR", err)
				break
			}
			fmt.Printf("%d in %v\n", n, time.Since(start))
		}
	}
}
