package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the plain SQLite the reads are compared with

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/redis/counter"
	"github.com/fieldcrm/fieldcrm/internal/store"
	"github.com/fieldcrm/fieldcrm/models"
)

// apiPeople are the bench tenant's users: an admin, two teams with their
// managers and reps. reps[0] has the large territory.
type apiPeople struct {
	tenant   string
	admin    *apiUser
	managers []*apiUser
	reps     []*apiUser
	teams    []string
}

// apiUser is a signed-in user; the client signs in again before the
// 15-minute access token runs out.
type apiUser struct {
	id, team, email, device string
	token                   string
	at                      time.Time
}

// apiPeople signs a tenant up and creates its teams and users over HTTP.
func (c *benchClient) apiPeople() (*apiPeople, error) {
	const password = "bench password 1"
	var signup struct {
		Token string `json:"access_token"`
		User  struct {
			ID     string `json:"id"`
			Tenant string `json:"tenant_id"`
		} `json:"user"`
	}
	if err := c.do("POST", "/v1/auth/signup", "", map[string]any{"company_name": "Bench 基准贸易", "name": "Admin", "email": "admin@bench.test", "password": password}, &signup); err != nil {
		return nil, err
	}
	p := &apiPeople{tenant: signup.User.Tenant,
		admin: &apiUser{id: signup.User.ID, email: "admin@bench.test", device: "bench-console", token: signup.Token, at: time.Now()}}
	var created struct {
		ID string `json:"id"`
	}
	for t, team := range []struct {
		name, manager string
		reps          []string
	}{
		{"华东销售部 East", "周建华", []string{"王磊", "李娜", "张伟", "刘洋", "陈静", "David Miller", "杨帆", "黄敏"}},
		{"华南销售部 South", "林晓梅", []string{"吴涛", "孙丽", "Emma Zhang", "徐鹏"}},
	} {
		email := fmt.Sprintf("manager%d@bench.test", t+1)
		if err := c.do("POST", "/v1/users", signup.Token, map[string]any{"email": email, "name": team.manager, "password": password, "role": "manager"}, &created); err != nil {
			return nil, err
		}
		mgr := &apiUser{id: created.ID, email: email, device: "bench-manager"}
		if err := c.do("POST", "/v1/teams", signup.Token, map[string]any{"name": team.name, "manager_id": mgr.id}, &created); err != nil {
			return nil, err
		}
		p.managers, p.teams = append(p.managers, mgr), append(p.teams, created.ID)
		for r, name := range team.reps {
			email := fmt.Sprintf("rep%d%d@bench.test", t+1, r+1)
			team := p.teams[t]
			if err := c.do("POST", "/v1/users", signup.Token, map[string]any{"email": email, "name": name, "password": password, "role": "rep", "team_id": team}, &created); err != nil {
				return nil, err
			}
			p.reps = append(p.reps, &apiUser{id: created.ID, team: team, email: email, device: "bench-phone"})
		}
	}
	return p, nil
}

// auth returns u's access token, signing in when it has none or it is old.
func (c *benchClient) auth(u *apiUser) (string, error) {
	if u.token != "" && time.Since(u.at) < 10*time.Minute {
		return u.token, nil
	}
	t, err := c.login(u.email, u.device)
	if err != nil {
		return "", err
	}
	u.token, u.at = t, time.Now()
	return u.token, nil
}

// Vocabulary of the generated customers: what a Chinese sales team's CRM holds.
var (
	apiSurnames    = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
	apiGiven       = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚英华建文辉玲鹏宇")
	apiFirst       = []string{"James", "Mary", "Robert", "Linda", "Michael", "Sarah", "Daniel", "Olivia", "Thomas", "Anna"}
	apiLast        = []string{"Smith", "Johnson", "Brown", "Taylor", "Wilson", "Chen", "Wong", "Lee", "Müller", "Schmidt"}
	apiCities      = []string{"上海", "北京", "广州", "深圳", "杭州", "苏州", "南京", "成都", "武汉", "宁波", "天津", "厦门"}
	apiCores       = []string{"华泰", "恒信", "宏达", "鑫源", "天成", "瑞丰", "中科", "金桥", "永安", "海川", "东方", "新锐"}
	apiTrades      = []string{"机械", "泵业", "阀门", "电气", "贸易", "科技", "建材", "化工", "水务", "环保"}
	apiEnCores     = []string{"Harbor", "Summit", "Bluewater", "Pioneer", "Apex", "Riverside", "Northstar", "Evergreen"}
	apiEnTrades    = []string{"Pumps", "Valves", "Engineering", "Trading", "Water Systems", "Foods"}
	apiRegions     = []string{"华东", "华南", "华北", "西南", "华中", "East China", "Overseas"}
	apiIndustries  = []string{"制造业", "建筑", "市政水务", "化工", "食品饮料", "物业", "农业灌溉", "manufacturing", "retail"}
	apiSizes       = []string{"1-49", "50-199", "200-999", "1000+"}
	apiTags        = []string{"水泵", "阀门", "控制柜", "维保", "重点客户", "export", "new", "tender"}
	apiRatings     = []string{"A", "B", "C", "D", "unrated"}
	apiPrefixes    = []string{"138", "139", "186", "135", "150", "177"}
	apiNotes       = []string{"电话沟通需求，客户关注交期", "微信发送报价单", "上门拜访，演示样品", "Called about the quote", "Site visit with the plant engineer", "季度业务回顾会议", "邮件发送合同草稿", "确认付款计划"}
	apiTaskTitles  = []string{"回访客户", "发送报价单", "确认交期", "催收货款", "Send the quote", "Call back"}
	apiTaskStatus  = []string{models.TaskOpen, models.TaskOpen, models.TaskDone, models.TaskDone, models.TaskDone, models.TaskCancelled}
	apiStageWeight = []int{30, 20, 15, 20, 8, 4, 3} // of models.Stages
)

// apiSeed describes the seeded customers, so that queries can name real
// values: customer i's fields are a function of i (its own random stream).
type apiSeed struct {
	seed      uint64
	tenant    string
	n         int
	now       time.Time
	st        models.Settings
	people    *apiPeople
	ids       []string
	owners    []*apiUser // nil: in the public pool
	created   []time.Time
	lastTouch []time.Time // latest interaction, zero when none
}

func (s *apiSeed) rng(i int) *rand.Rand { return rand.New(rand.NewPCG(s.seed, uint64(i))) }

// phone is customer i's unique mobile in E.164 (7919 is prime to 10^8, so
// i ↦ digits is one to one).
func apiPhone(i int) string {
	n := (int64(i)*7919 + 1234567) % 100_000_000
	return "+86" + apiPrefixes[i%len(apiPrefixes)] + fmt.Sprintf("%08d", n)
}

// phoneAsTyped writes an E.164 mainland mobile as people type it.
func phoneAsTyped(e164 string, style int) string {
	d := strings.TrimPrefix(e164, "+86")
	switch style % 4 {
	case 0:
		return d
	case 1:
		return d[:3] + " " + d[3:7] + " " + d[7:]
	case 2:
		return "+86 " + d[:3] + "-" + d[3:7] + "-" + d[7:]
	default:
		return "(86) " + d
	}
}

// customer builds customer i as the CRM would store it once created by its
// owner: prepared, numbered, with its search keys and duplicate flag.
func (s *apiSeed) customer(i int) (*models.Customer, error) {
	r := s.rng(i)
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	var f models.CustomerFields
	latin := r.IntN(5) == 0
	switch {
	case r.IntN(10) < 6:
		f.Kind = models.KindCompany
		if latin {
			f.Name = fmt.Sprintf("%s %s %d Co., Ltd.", pick(apiEnCores), pick(apiEnTrades), i)
		} else {
			f.Name = fmt.Sprintf("%s%s%s%d有限公司", pick(apiCities), pick(apiCores), pick(apiTrades), i)
		}
		f.CompanyName = f.Name
		f.CompanySize = pick(apiSizes)
	default:
		f.Kind = models.KindPerson
		if latin {
			f.Name = pick(apiFirst) + " " + pick(apiLast)
		} else {
			name := []rune{apiSurnames[r.IntN(len(apiSurnames))], apiGiven[r.IntN(len(apiGiven))]}
			if r.IntN(2) == 0 {
				name = append(name, apiGiven[r.IntN(len(apiGiven))])
			}
			f.Name = string(name)
		}
		if r.IntN(2) == 0 { // works at a company
			f.CompanyName = fmt.Sprintf("%s%s%s%d有限公司", pick(apiCities), pick(apiCores), pick(apiTrades), i)
		}
	}
	phone := apiPhone(i)
	if i%100 == 50 { // about 1%: the phone of the customer before, so a duplicate
		phone = apiPhone(i - 1)
	}
	f.Phones = []models.Phone{{Label: "mobile", Number: phoneAsTyped(phone, r.IntN(4))}}
	if latin || r.IntN(3) == 0 {
		f.Emails = []models.Email{{Label: "work", Address: apiEmail(i)}}
	}
	if r.IntN(10) < 3 {
		f.Social = []models.Social{{Network: pick([]string{"wechat", "wechat", "linkedin", "weibo"}), Handle: apiHandle(i)}}
	}
	f.Region = pick(apiRegions)
	f.Address.City = pick(apiCities)
	f.Industry = pick(apiIndustries)
	f.Source = pick(models.SourceChannels)
	f.CustomerType = []string{"normal", "normal", "normal", "vip", "key_account", "partner"}[r.IntN(6)]
	if r.IntN(10) < 7 {
		f.NeedType = pick(models.NeedTypes)
	}
	f.ValueTier = pick(models.ValueTiers)
	f.Stage = weightedStage(r)
	for range r.IntN(4) {
		f.Tags = append(f.Tags, pick(apiTags))
	}
	c := &models.Customer{CustomerFields: f}
	if err := c.Prepare(s.st); err != nil {
		return nil, fmt.Errorf("customer %d: %w", i, err)
	}
	c.ID = s.ids[i]
	c.Number = s.number(i)
	c.RefreshSearchKeys()
	owner, at := s.owners[i], s.created[i]
	by := s.people.admin.id
	if owner != nil {
		by = owner.id
		c.OwnerID, c.TeamID = owner.id, owner.team
		c.AssignedAt = &at
	}
	c.StageHistory = []models.Transition{{To: c.Stage, By: by, At: at}}
	c.OwnerHistory = []models.OwnerChange{{To: c.OwnerID, By: by, At: at, Reason: "created"}}
	c.Balance = []models.Money{}
	c.Loyalty = models.Loyalty{Tier: s.st.TierFor(0)}
	if r.IntN(10) < 7 {
		c.Credit = &models.Credit{Rating: pick(apiRatings)}
	}
	if !s.lastTouch[i].IsZero() {
		t := s.lastTouch[i]
		c.LastInteractionAt = &t
	}
	if i%100 == 50 {
		c.Duplicate = &models.DuplicateFlag{CandidateIDs: []string{s.ids[i-1]}, Reasons: []string{models.DuplicateReason("phone:" + phone)}}
	}
	c.Meta = models.Meta{ID: c.ID, TenantID: s.tenant, OwnerID: c.OwnerID, TeamID: c.TeamID, Version: 1,
		CreatedAt: at, CreatedBy: by, UpdatedAt: at.Add(time.Duration(r.Int64N(int64(s.now.Sub(at)) + 1))), UpdatedBy: by}
	return c, nil
}

func weightedStage(r *rand.Rand) string {
	n := r.IntN(100)
	for i, w := range apiStageWeight {
		if n < w {
			return models.Stages[i]
		}
		n -= w
	}
	return models.Stages[0]
}

func apiEmail(i int) string {
	return fmt.Sprintf("%s.%s%d@example.com", strings.ToLower(apiFirst[i%len(apiFirst)]), strings.ToLower(apiLast[i/7%len(apiLast)]), i)
}

func apiHandle(i int) string { return "wx_" + strconv.FormatInt(int64(i)*7919+104729, 36) }

func (s *apiSeed) number(i int) string { return s.st.CustomerNumber.Format(int64(i+1), s.now) }

// seedAPI writes the tenant's customers, interactions and tasks straight
// through the store in batches, stamped with sync numbers as the service
// would, plus what creating them through the CRM leaves elsewhere: the
// duplicate-key index, the customer-number claims and counter. Each customer
// also goes into the plain table. It reports each collection's time.
func seedAPI(ctx context.Context, a *app.App, redisPrefix string, s *apiSeed, interactions, tasks int, plain *plainDB, report func(what string, n int, took time.Duration)) error {
	rng := rand.New(rand.NewPCG(s.seed, 0x5eed))
	year := 365 * 24 * time.Hour
	s.ids, s.owners, s.created, s.lastTouch = make([]string, s.n), make([]*apiUser, s.n), make([]time.Time, s.n), make([]time.Time, s.n)
	people := s.people
	for i := range s.n {
		s.ids[i] = models.NewID()
		switch r := rng.IntN(100); {
		case r < 3: // the public pool
		case r < 28:
			s.owners[i] = people.reps[0] // the rep with the large territory
		case r < 32:
			s.owners[i] = people.managers[rng.IntN(len(people.managers))]
		default:
			s.owners[i] = people.reps[rng.IntN(len(people.reps))]
		}
		s.created[i] = s.now.Add(-time.Duration(rng.Int64N(int64(year)))).Truncate(time.Millisecond)
	}
	// Interactions are planned first: each customer's latest is on it.
	type planned struct {
		customer int
		at       time.Time
	}
	plan := make([]planned, interactions)
	for k := range plan {
		i := rng.IntN(s.n)
		at := s.created[i].Add(time.Duration(rng.Int64N(int64(s.now.Sub(s.created[i])) + 1))).Truncate(time.Millisecond)
		plan[k] = planned{i, at}
		if t := at.Truncate(time.Minute); t.After(s.lastTouch[i]) {
			s.lastTouch[i] = t
		}
	}

	start := time.Now()
	keys := map[string][]string{}
	err := seedBatches(ctx, a, s.tenant, store.Customers, s.n, func(i int) (models.Record, error) {
		c, err := s.customer(i)
		if err != nil {
			return nil, err
		}
		for _, k := range c.LookupKeys() {
			keys[k] = append(keys[k], c.ID)
		}
		return c, plain.add(c)
	}, plain.commit)
	if err != nil {
		return err
	}
	if err := a.Store.InsertCustomerKeys(ctx, s.tenant, keys); err != nil {
		return err
	}
	for from := 0; from < s.n; from += 1000 {
		to := min(from+1000, s.n)
		numbers := make([]string, 0, to-from)
		for i := from; i < to; i++ {
			numbers = append(numbers, s.number(i))
		}
		if err := a.Store.ClaimCustomerNumbers(ctx, s.tenant, int64(from+1), numbers, s.ids[from:to]); err != nil {
			return err
		}
	}
	// The CRM's counter of customer numbers (crm.Service.assignNumber): the
	// next customer created gets number n+1 without a failed claim first.
	if err := counter.New(a.Redis, redisPrefix+"counter:").AtLeast(ctx, "customer-number:"+s.tenant, int64(s.n)); err != nil {
		return err
	}
	if err := plain.analyze(); err != nil {
		return err
	}
	report("customers", s.n, time.Since(start))

	start = time.Now()
	err = seedBatches(ctx, a, s.tenant, store.Interactions, interactions, func(k int) (models.Record, error) {
		p := plan[k]
		owner := s.owners[p.customer]
		in := &models.Interaction{ChildFields: models.ChildFields{CustomerID: s.ids[p.customer]},
			Channel: models.Channels[k%len(models.Channels)], OccurredAt: p.at, DurationSeconds: 60 * (1 + k%40),
			Content: fmt.Sprintf("%s #%d", apiNotes[k%len(apiNotes)], k), Outcome: []string{"有意向", "需要报价", "暂无需求", "interested"}[k%4]}
		if err := in.Prepare(s.now); err != nil {
			return nil, err
		}
		in.Meta = childMeta(s, owner, p.at)
		return in, nil
	}, nil)
	if err != nil {
		return err
	}
	report("interactions", interactions, time.Since(start))

	start = time.Now()
	err = seedBatches(ctx, a, s.tenant, store.Tasks, tasks, func(k int) (models.Record, error) {
		i := rng.IntN(s.n)
		owner := s.owners[i]
		due := s.now.Add(time.Duration(rng.Int64N(int64(year))) - year/2).Truncate(time.Minute)
		t := &models.Task{ChildFields: models.ChildFields{CustomerID: s.ids[i]}, Title: apiTaskTitles[k%len(apiTaskTitles)],
			DueAt: due, Status: apiTaskStatus[rng.IntN(len(apiTaskStatus))], RemindMinutesBefore: 15}
		if owner != nil {
			t.AssigneeID = owner.id
		}
		if t.Status == models.TaskDone {
			done := due.Add(-time.Hour)
			t.CompletedAt = &done
		}
		if err := t.Prepare(s.now); err != nil {
			return nil, err
		}
		t.Meta = childMeta(s, owner, s.created[i])
		return t, nil
	}, nil)
	if err != nil {
		return err
	}
	report("tasks", tasks, time.Since(start))
	return nil
}

// childMeta is the header of a record of a customer owned by owner (nil: the pool).
func childMeta(s *apiSeed, owner *apiUser, at time.Time) models.Meta {
	m := models.Meta{TenantID: s.tenant, Version: 1, CreatedAt: at, CreatedBy: s.people.admin.id, UpdatedAt: at, UpdatedBy: s.people.admin.id}
	if owner != nil {
		m.OwnerID, m.TeamID, m.CreatedBy, m.UpdatedBy = owner.id, owner.team, owner.id, owner.id
	}
	return m
}

// stampAsCreated gives rec the sync numbers a create through the API gives
// it: seq on the record and on each of its fields (by JSON name), each
// written by no device. A pull and an export read those too.
func stampAsCreated(rec models.Record, seq int64) error {
	text, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("stamp a seeded record: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(text, &fields); err != nil {
		return fmt.Errorf("stamp a seeded record: %w", err)
	}
	m := rec.Header()
	m.Seq, m.FieldSeqs, m.FieldDevices = seq, map[string]int64{"id": seq}, map[string]string{"id": ""}
	for name := range fields {
		m.FieldSeqs[name], m.FieldDevices[name] = seq, ""
	}
	return nil
}

// seedBatches stores n records made by build, 500 at a time, each with a
// sync number and a new id unless build gave it one; flush, when set, runs
// after each batch.
func seedBatches(ctx context.Context, a *app.App, tenant, coll string, n int, build func(i int) (models.Record, error), flush func() error) error {
	const batch = 500
	for from := 0; from < n; from += batch {
		recs := make([]models.Record, 0, batch)
		var dones []func()
		for i := from; i < min(from+batch, n); i++ {
			rec, err := build(i)
			if err != nil {
				return err
			}
			seq, done, err := a.Sequencer.Begin(ctx, tenant)
			if err != nil {
				return err
			}
			dones = append(dones, done)
			m := rec.Header()
			if m.ID == "" {
				m.ID = models.NewID()
			}
			if err := stampAsCreated(rec, seq); err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		err := a.Store.InsertBatch(ctx, coll, recs, models.AuditEntry{Action: "seed"})
		for _, done := range dones {
			done()
		}
		if err != nil {
			return err
		}
		if flush != nil {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// plainDB is the same customers in an ordinary SQLite table, one column per
// filterable field and an index per filter and sort, as anyone would build
// it: what a list, a filter, a sort or a search costs on this machine
// without a document store in between.
type plainDB struct {
	db   *sql.DB
	tx   *sql.Tx
	rows [][]any
	tags [][2]string
	keys [][2]string
}

func openPlainDB(path string) (*plainDB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=synchronous(off)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	stmts := []string{`CREATE TABLE customers (id TEXT PRIMARY KEY, tenant_id TEXT, owner_id TEXT, team_id TEXT,
		name TEXT, number TEXT, stage TEXT, customer_type TEXT, source TEXT, region TEXT, industry TEXT,
		company_size TEXT, need_type TEXT, value_tier TEXT, credit_rating TEXT, duplicate INTEGER,
		updated_at INTEGER, last_interaction_at INTEGER, search TEXT, doc BLOB)`,
		// The default order (by id) within the tenant: without it SQLite
		// takes another index for tenant_id and sorts every row.
		`CREATE INDEX customers_tenant ON customers (tenant_id, id)`,
		`CREATE TABLE customer_tags (customer_id TEXT, tag TEXT)`,
		`CREATE INDEX customer_tags_tag ON customer_tags (tag, customer_id)`,
		`CREATE TABLE customer_keys (customer_id TEXT, key TEXT)`,
		`CREATE INDEX customer_keys_key ON customer_keys (key, customer_id)`}
	for _, col := range []string{"owner_id", "team_id", "number", "stage", "customer_type", "source", "region", "industry",
		"company_size", "need_type", "value_tier", "credit_rating", "duplicate", "updated_at", "name", "last_interaction_at"} {
		stmts = append(stmts, fmt.Sprintf("CREATE INDEX customers_%s ON customers (tenant_id, %s, id)", col, col))
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			db.Close()
			return nil, fmt.Errorf("plain SQLite: %w", err)
		}
	}
	return &plainDB{db: db}, nil
}

// add queues c's row; commit writes the queued rows.
func (p *plainDB) add(c *models.Customer) error {
	doc, err := json.Marshal(c)
	if err != nil {
		return err
	}
	rating := ""
	if c.Credit != nil {
		rating = c.Credit.Rating
	}
	var last any
	if c.LastInteractionAt != nil {
		last = c.LastInteractionAt.UnixMilli()
	}
	search := slices.Clone(c.SearchKeys)
	for _, s := range c.Social {
		search = append(search, strings.ToLower(s.Handle))
	}
	p.rows = append(p.rows, []any{c.ID, c.TenantID, c.OwnerID, c.TeamID, c.Name, c.Number, c.Stage, c.CustomerType, c.Source,
		c.Region, c.Industry, c.CompanySize, c.NeedType, c.ValueTier, rating, c.Duplicate != nil, c.UpdatedAt.UnixMilli(), last,
		"\x1f" + strings.Join(search, "\x1f") + "\x1f", doc})
	for _, t := range c.Tags {
		p.tags = append(p.tags, [2]string{c.ID, t})
	}
	for _, k := range c.SearchKeys {
		p.keys = append(p.keys, [2]string{c.ID, k})
	}
	return nil
}

func (p *plainDB) commit() error {
	tx, err := p.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, r := range p.rows {
		if _, err := tx.Exec(`INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, r...); err != nil {
			return fmt.Errorf("plain SQLite: %w", err)
		}
	}
	for _, t := range p.tags {
		if _, err := tx.Exec(`INSERT INTO customer_tags VALUES (?,?)`, t[0], t[1]); err != nil {
			return err
		}
	}
	for _, k := range p.keys {
		if _, err := tx.Exec(`INSERT INTO customer_keys VALUES (?,?)`, k[0], k[1]); err != nil {
			return err
		}
	}
	p.rows, p.tags, p.keys = p.rows[:0], p.tags[:0], p.keys[:0]
	return tx.Commit()
}

// plainRow is the last row of a plain page: where the next page starts.
type plainRow struct {
	id   string
	sort any
}

// page runs a list query: where (with args) on top of the tenant, ordered by
// sortCol (empty: id), after the row after when given; it returns the rows
// read, each row's document copied out as a client would receive it.
func (p *plainDB) page(ctx context.Context, tenant, where string, args []any, sortCol string, desc bool, after *plainRow, limit int) (int, *plainRow, error) {
	conds, all := []string{"tenant_id = ?"}, append([]any{tenant}, args...)
	if where != "" {
		conds = append(conds, where)
	}
	cmp, dir := ">", "ASC"
	if desc {
		cmp, dir = "<", "DESC"
	}
	order, sortExpr := "id "+dir, "NULL"
	if sortCol != "" {
		// NULLs sort first ascending and last descending, as in MongoDB.
		order, sortExpr = fmt.Sprintf("%s %s, id %s", sortCol, dir, dir), sortCol
	}
	if after != nil {
		if sortCol == "" {
			conds, all = append(conds, "id "+cmp+" ?"), append(all, after.id)
		} else {
			conds = append(conds, fmt.Sprintf("(%[1]s %[2]s ? OR (%[1]s IS ? AND id %[2]s ?))", sortCol, cmp))
			all = append(all, after.sort, after.sort, after.id)
		}
	}
	q := fmt.Sprintf("SELECT id, %s, doc FROM customers WHERE %s ORDER BY %s LIMIT %d", sortExpr, strings.Join(conds, " AND "), order, limit+1)
	rows, err := p.db.QueryContext(ctx, q, all...)
	if err != nil {
		return 0, nil, fmt.Errorf("plain SQLite %s: %w", q, err)
	}
	defer rows.Close()
	n, last := 0, &plainRow{}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&last.id, &last.sort, &doc); err != nil {
			return 0, nil, err
		}
		n++
		if n == limit {
			break
		}
	}
	return n, last, rows.Err()
}

// analyze gathers the statistics SQLite's planner chooses indexes by, as
// anyone running a table of this size would.
func (p *plainDB) analyze() error {
	_, err := p.db.Exec("ANALYZE")
	return err
}

func (p *plainDB) Close() error { return p.db.Close() }
