package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/internal/crm/imports"
	"github.com/fieldcrm/fieldcrm/models"
)

// benchImport runs `fieldcrm bench import`: on a throwaway database it writes
// a messy spreadsheet of customers (Chinese names, phones and dates in many
// forms, 1 % invalid phones, duplicate e-mails within the file), imports it
// as `fieldcrm import` does, then times a CSV export of everything and the
// customers and RFM reports over HTTP.
func benchImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rows := fs.Int("rows", 10000, "rows in the spreadsheet")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the import to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	a, engine, cleanup, err := benchApp(ctx, getenv, stderr, map[string]string{"FIELDCRM_ADDR": addr})
	defer cleanup()
	if err != nil {
		return err
	}
	c, stopServe, err := listenForBench(ctx, a, addr)
	defer stopServe()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fieldcrm bench import: %s, %d rows\n", engine, *rows)
	rep, err := c.territory()
	if err != nil {
		return err
	}
	u, err := a.Store.UserByEmail(ctx, rep.email)
	if err != nil {
		return err
	}
	actor := models.Actor{TenantID: u.TenantID, UserID: u.ID, Role: u.Role, TeamID: u.TeamID}
	file := filepath.Join(os.TempDir(), fmt.Sprintf("fieldcrm-bench-%d.csv", os.Getpid()))
	defer os.Remove(file)
	if err := writeMessyCustomers(file, *rows); err != nil {
		return err
	}

	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	var peak uint64
	start := time.Now()
	started, err := a.Imports.Start(ctx, imports.Request{Actor: actor, OnDuplicate: crm.OnDuplicateSkip,
		FileName: "customers.csv", Progress: func(models.Import) { notePeakHeap(&peak) }}, f)
	if err != nil {
		stopProfile()
		return err
	}
	job, err := started.Wait(ctx)
	took := time.Since(start)
	stopProfile()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%-28s %10s %12s\n", "operation", "total", "rows/s")
	fmt.Fprintf(stdout, "%-28s %10s %12.0f   created %d, skipped %d, failed %d; peak heap %d MiB\n", "import", took.Round(time.Millisecond),
		float64(job.Done)/took.Seconds(), job.Created, job.Skipped, job.Failed, peak>>20)

	token, err := c.login(rep.email, "bench-console")
	if err != nil {
		return err
	}
	timed := func(name, path string, rows int) error {
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := c.http.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		n, err := io.Copy(io.Discard, res.Body)
		if err != nil || res.StatusCode != 200 {
			return fmt.Errorf("%s: %d, %d bytes, %v", path, res.StatusCode, n, err)
		}
		took := time.Since(start)
		fmt.Fprintf(stdout, "%-28s %10s %12.0f   %d KiB\n", name, took.Round(time.Millisecond), float64(rows)/took.Seconds(), n>>10)
		return nil
	}
	for _, step := range []struct{ name, path string }{
		{"export CSV", "/v1/exports/customers?format=csv"},
		{"export XLSX", "/v1/exports/customers?format=xlsx"},
		{"customers report", "/v1/reports/customers"},
		{"RFM report", "/v1/reports/rfm"},
	} {
		if err := timed(step.name, step.path, job.Created); err != nil {
			return err
		}
	}
	return nil
}

// notePeakHeap raises peak to the heap in use now, if higher.
func notePeakHeap(peak *uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	*peak = max(*peak, ms.HeapInuse)
}

// writeMessyCustomers writes rows customers as a Chinese CRM export looks:
// UTF-8 with BOM, Chinese headers, phones and dates in several forms.
func writeMessyCustomers(path string, rows int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	rng := rand.New(rand.NewPCG(1, 2))
	surnames, given := []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"), []rune("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚")
	dates := []string{"1990年3月7日", "1985/12/1", "2001-05-06", "", ""}
	stages := []string{"线索", "潜在客户", "成交客户", "lead", ""}
	fmt.Fprint(w, "\uFEFF客户编号,客户名称,类型,手机,邮箱,生日,阶段,备注\n")
	for i := range rows {
		name := string([]rune{surnames[rng.IntN(len(surnames))], given[rng.IntN(len(given))], given[rng.IntN(len(given))]}) + fmt.Sprint(i)
		phone := fmt.Sprintf("13%d %04d %04d", rng.IntN(10), rng.IntN(10000), rng.IntN(10000))
		switch {
		case i%97 == 0:
			phone = "12" // not a phone: the row fails
		case i%10 == 0:
			// Two-digit area codes of big cities (026 is not one).
			areas := []int{20, 21, 22, 23, 24, 25, 27, 28, 29}
			phone = fmt.Sprintf("(0%d) %d", areas[rng.IntN(len(areas))], 80000000+rng.IntN(9999999))
		}
		email := ""
		if i%3 == 0 {
			email = fmt.Sprintf("c%d@example.cn", i)
		}
		if i%50 == 1 {
			email = fmt.Sprintf("c%d@example.cn", i-1) // the row before's: a duplicate within the file
		}
		fmt.Fprintf(w, "OLD-%07d,%s,个人,%s,%s,%s,%s,note %d\n", i, name, phone, email, dates[rng.IntN(len(dates))], stages[rng.IntN(len(stages))], i)
	}
	return w.Flush()
}
