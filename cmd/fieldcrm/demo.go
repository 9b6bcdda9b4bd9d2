package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/fieldcrm/fieldcrm/internal/app"
	"github.com/fieldcrm/fieldcrm/internal/crm"
	"github.com/fieldcrm/fieldcrm/models"
)

// demoCompany is the demo tenant's name.
const demoCompany = "示范机电贸易有限公司 Demo Pumps & Valves"

type demoOptions struct {
	Customers        int
	Seed             uint64
	Domain, Password string
	// End is "now": the year of history ends here.
	End time.Time
}

// demoSeeder writes a demo tenant: three sales teams of a manager and four
// reps each, a support team, and a year in which customers are won and
// lost, called, visited, sold to, paid by, served and surveyed.
//
// It plans every event of the year first, then runs them in time order
// through a CRM whose clock it sets to each event's moment, so everything
// the server stamps (creation times, stage and status histories, SLA
// deadlines, completion times) is the year's, exactly as if the reps had
// used fieldcrm all year.
type demoSeeder struct {
	app        *app.App
	crm        *crm.Service
	clock      *demoClock
	rng        *rand.Rand
	o          demoOptions
	start, end time.Time
	progress   io.Writer
	shanghai   *time.Location

	admin   models.Actor
	actors  map[string]models.Actor // by user id
	teams   []demoTeam
	events  []demoEvent
	counts  map[string]int
	points  map[string]int64 // loyalty balance per customer, as the events run
	serial  int              // makes phones, e-mails and company names unique
	company []string         // company names not used yet
}

type demoTeam struct {
	region string
	reps   []models.Actor
}

type demoEvent struct {
	at   time.Time
	what string
	do   func(ctx context.Context) error
}

// demoClock is the seeding CRM's clock.
type demoClock struct{ t time.Time }

func (c *demoClock) Now() time.Time { return c.t }

func newDemoSeeder(a *app.App, o demoOptions, progress io.Writer) (*demoSeeder, error) {
	clock := &demoClock{t: o.End}
	svc, err := a.CRM.WithClock(clock.Now)
	if err != nil {
		return nil, err
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return nil, err
	}
	d := &demoSeeder{app: a, crm: svc, clock: clock, rng: rand.New(rand.NewPCG(o.Seed, 0x5eed)), o: o,
		start: o.End.AddDate(-1, 0, 0), end: o.End, progress: progress, shanghai: shanghai,
		actors: map[string]models.Actor{}, counts: map[string]int{}, points: map[string]int64{}}
	d.company = d.companyNames()
	return d, nil
}

// run creates the tenant and its people, plans the year and plays it.
func (d *demoSeeder) run(ctx context.Context) error {
	if err := d.people(ctx); err != nil {
		return err
	}
	for i := 0; i < d.o.Customers; i++ {
		d.planCustomer()
	}
	sort.SliceStable(d.events, func(i, j int) bool { return d.events[i].at.Before(d.events[j].at) })
	last := time.Now()
	for i, e := range d.events {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.clock.t = e.at
		if err := e.do(ctx); err != nil {
			return fmt.Errorf("%s at %s: %w", e.what, e.at.Format(time.RFC3339), err)
		}
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			fmt.Fprintf(d.progress, "seeded %d of %d events (%s)\n", i+1, len(d.events), e.at.Format(time.DateOnly))
		}
	}
	d.clock.t = d.end
	_, err := d.crm.RefreshRFM(ctx, d.admin.TenantID)
	return err
}

// people signs the tenant up and creates its teams and users.
func (d *demoSeeder) people(ctx context.Context) error {
	acc := d.app.Accounts
	_, admin, err := acc.Signup(ctx, models.Signup{CompanyName: demoCompany, Name: "陈总 Chen Wei", Email: d.email("admin"),
		Password: d.o.Password, TimeZone: "Asia/Shanghai", Locale: "zh-CN"}, "")
	if err != nil {
		return fmt.Errorf("sign up the demo tenant (is %s taken? pass --email-domain): %w", d.email("admin"), err)
	}
	d.admin = models.Actor{UserID: admin.ID, TenantID: admin.TenantID, Role: models.RoleAdmin}
	d.counts["users"]++
	sales := []struct{ team, region, manager string }{
		{"华东销售部 East", "华东", "周建华"}, {"华南销售部 South", "华南", "林晓梅"}, {"华北销售部 North", "华北", "赵国强"},
	}
	reps := []string{"王磊", "李娜", "张伟", "刘洋", "陈静", "杨帆", "黄敏", "吴涛", "孙丽", "徐鹏", "David Miller", "Emma Zhang"}
	for i, s := range sales {
		team, err := d.team(ctx, s.team, s.manager, fmt.Sprintf("manager%d", i+1))
		if err != nil {
			return err
		}
		t := demoTeam{region: s.region}
		for j := 0; j < 4; j++ {
			name := reps[i*4+j]
			locale := "zh-CN"
			if name[0] < 0x80 {
				locale = "en"
			}
			u, err := d.user(ctx, name, fmt.Sprintf("rep%d%d", i+1, j+1), models.RoleRep, team.ID, locale)
			if err != nil {
				return err
			}
			t.reps = append(t.reps, u)
		}
		d.teams = append(d.teams, t)
	}
	support, err := d.team(ctx, "客户服务部 Service", "郑雪", "service-manager")
	if err != nil {
		return err
	}
	for i, name := range []string{"何佳", "Olivia Wang"} {
		if _, err := d.user(ctx, name, fmt.Sprintf("service%d", i+1), models.RoleRep, support.ID, "zh-CN"); err != nil {
			return err
		}
	}
	_, err = d.crm.PatchSettings(ctx, d.admin, func(dst any) error {
		st := dst.(*models.Settings)
		st.SupportTeamID = support.ID
		st.PoolReclaimDays = 0 // the demo's customers stay with their reps
		return nil
	})
	return err
}

func (d *demoSeeder) email(local string) string { return local + "@" + d.o.Domain }

// team creates a team with its manager.
func (d *demoSeeder) team(ctx context.Context, name, manager, local string) (models.Team, error) {
	m, err := d.user(ctx, manager, local, models.RoleManager, "", "zh-CN")
	if err != nil {
		return models.Team{}, err
	}
	t, err := d.app.Accounts.CreateTeam(ctx, d.admin, models.NewTeam{Name: name, ManagerID: m.UserID})
	if err != nil {
		return t, fmt.Errorf("team %s: %w", name, err)
	}
	d.counts["teams"]++
	return t, nil
}

func (d *demoSeeder) user(ctx context.Context, name, local string, role models.Role, teamID, locale string) (models.Actor, error) {
	u, err := d.app.Accounts.CreateUser(ctx, d.admin, models.NewUser{Email: d.email(local), Name: name, Password: d.o.Password,
		Role: role, TeamID: teamID, TimeZone: "Asia/Shanghai", Locale: locale})
	if err != nil {
		return models.Actor{}, fmt.Errorf("user %s: %w", name, err)
	}
	d.counts["users"]++
	a := models.Actor{UserID: u.ID, TenantID: u.TenantID, Role: u.Role, TeamID: u.TeamID}
	d.actors[u.ID] = a
	return a, nil
}

// at adds an event; events after the end of the year do not happen.
func (d *demoSeeder) at(t time.Time, what string, do func(ctx context.Context) error) {
	if t.Before(d.end) {
		d.events = append(d.events, demoEvent{at: t, what: what, do: do})
	}
}

// workTime is a moment on the day of t between 09:00 and 18:00 Shanghai time.
func (d *demoSeeder) workTime(t time.Time) time.Time {
	local := t.In(d.shanghai)
	day := time.Date(local.Year(), local.Month(), local.Day(), 9, 0, 0, 0, d.shanghai)
	return day.Add(time.Duration(d.rng.IntN(9*60)) * time.Minute).UTC()
}

func (d *demoSeeder) days(lo, hi int) time.Duration {
	return time.Duration(lo+d.rng.IntN(hi-lo+1)) * 24 * time.Hour
}

func pick[T any](d *demoSeeder, list []T) T { return list[d.rng.IntN(len(list))] }

// weighted picks a key by weight.
func (d *demoSeeder) weighted(choices []string, weights []int) string {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := d.rng.IntN(total)
	for i, w := range weights {
		if n < w {
			return choices[i]
		}
		n -= w
	}
	return choices[len(choices)-1]
}

// demoCustomer is a customer being planned; id is known once its creation
// event has run (every later event of it runs after that one).
type demoCustomer struct {
	id    string
	owner models.Actor
}

// planCustomer plans one customer's year: creation, stage moves, and what
// happens with it at each stage.
func (d *demoSeeder) planCustomer() {
	team := d.teams[d.rng.IntN(len(d.teams))]
	c := &demoCustomer{owner: pick(d, team.reps)}
	region := team.region
	if d.rng.IntN(10) == 0 {
		region = pick(d, []string{"西南", "华中"})
	}
	in := d.customerFields(region)
	// More customers arrive early in the year, so more of them have a history.
	u := d.rng.Float64()
	created := d.workTime(d.start.Add(time.Duration(u * u * float64(d.end.Sub(d.start)-24*time.Hour))))
	d.at(created, "create customer "+in.Name, func(ctx context.Context) error {
		cust, err := d.crm.CreateCustomer(ctx, c.owner, in, true)
		c.id = cust.ID
		d.counts["customers"]++
		return err
	})
	if in.Kind == models.KindCompany {
		for i := 0; i < 1+d.rng.IntN(2); i++ {
			d.planContact(c, created.Add(d.days(0, 20)+time.Hour), i == 0)
		}
	}
	// The lifecycle: each step is taken with a chance, some days later.
	t := created
	stage := in.Stage
	steps := []struct {
		from, to string
		chance   int // in 100
		lo, hi   int // days
	}{
		{"lead", "prospect", 75, 3, 30}, {"prospect", "opportunity", 70, 7, 40}, {"opportunity", "customer", 65, 7, 50},
	}
	for _, s := range steps {
		if stage != s.from || d.rng.IntN(100) >= s.chance {
			break
		}
		t = d.workTime(t.Add(d.days(s.lo, s.hi)))
		stage = s.to
		d.planStage(c, t, stage)
	}
	d.planContactsOfTheYear(c, created, stage)
	if stage != "customer" {
		return
	}
	won := t
	d.planOrders(c, won)
	d.planTickets(c, won)
	switch r := d.rng.IntN(100); {
	case r < 25:
		d.planStage(c, d.workTime(won.Add(d.days(60, 150))), "loyal")
	case r < 40:
		lost := d.workTime(won.Add(d.days(60, 150)))
		d.planStage(c, lost, "at_risk")
		if d.rng.IntN(2) == 0 {
			d.planStage(c, d.workTime(lost.Add(d.days(20, 60))), "churned")
		}
	}
}

func (d *demoSeeder) planStage(c *demoCustomer, t time.Time, stage string) {
	d.at(t, "move a customer to "+stage, func(ctx context.Context) error {
		_, err := d.crm.Customers.Update(ctx, c.owner, c.id, 0, func(dst any) error {
			dst.(*models.Customer).Stage = stage
			return nil
		})
		return err
	})
}

func (d *demoSeeder) planContact(c *demoCustomer, t time.Time, primary bool) {
	name, _ := d.personName()
	d.serial++
	phone := d.mobile()
	title := pick(d, []string{"采购经理", "总经理", "设备主管", "财务", "Purchasing Manager", "Plant Engineer"})
	d.at(t, "add a contact", func(ctx context.Context) error {
		_, err := d.crm.Contacts.Create(ctx, c.owner, models.Contact{ChildFields: models.ChildFields{CustomerID: c.id}, Name: name,
			Title: title, IsPrimary: primary, ContactPoints: models.ContactPoints{Phones: []models.Phone{{Label: "mobile", Number: phone}}}})
		d.counts["contacts"]++
		return err
	})
}

// planContactsOfTheYear plans calls, visits and messages, more often for
// customers further along, each with a follow-up task now and then.
func (d *demoSeeder) planContactsOfTheYear(c *demoCustomer, created time.Time, stage string) {
	n := map[string]int{"lead": 2, "prospect": 4, "opportunity": 6, "customer": 9}[stage]
	n += d.rng.IntN(4)
	span := d.end.Sub(created)
	for i := 0; i < n; i++ {
		t := d.workTime(created.Add(time.Hour + time.Duration(d.rng.Int64N(int64(span)))))
		if t.Before(created.Add(time.Hour)) {
			t = created.Add(time.Hour) // the same day, but not before the customer existed
		}
		channel := d.weighted([]string{"phone", "wechat", "visit", "meeting", "email"}, []int{40, 25, 20, 8, 7})
		in := models.Interaction{Channel: channel, DurationSeconds: 60 * (2 + d.rng.IntN(40)), Content: pick(d, demoNotes[channel]),
			Outcome: pick(d, []string{"有意向", "需要报价", "暂无需求", "interested", "follow up"})}
		if channel == "visit" && d.rng.IntN(10) < 8 {
			in.CheckIn = &models.CheckIn{Lat: 31.2 + d.rng.Float64()/5, Lng: 121.4 + d.rng.Float64()/5, Accuracy: float64(5 + d.rng.IntN(50))}
		}
		d.at(t, "log an interaction", func(ctx context.Context) error {
			in.ChildFields.CustomerID = c.id
			in.OccurredAt = d.clock.t
			_, err := d.crm.Interactions.Create(ctx, c.owner, in)
			d.counts["interactions"]++
			return err
		})
		if d.rng.IntN(3) == 0 {
			d.planTask(c, t.Add(10*time.Minute))
		}
	}
}

// planTask plans a follow-up: most are done by their due time, some late,
// some never.
func (d *demoSeeder) planTask(c *demoCustomer, t time.Time) {
	due := d.workTime(t.Add(d.days(1, 10)))
	var id string
	d.at(t, "plan a follow-up", func(ctx context.Context) error {
		task, err := d.crm.Tasks.Create(ctx, c.owner, models.Task{ChildFields: models.ChildFields{CustomerID: c.id},
			Title: pick(d, []string{"回访客户", "发送报价单", "确认交期", "催收货款", "Send the quote", "Call back"}), DueAt: due,
			RemindMinutesBefore: 15})
		id = task.ID
		d.counts["tasks"]++
		return err
	})
	var done time.Time
	switch r := d.rng.IntN(100); {
	case r < 70:
		done = due.Add(-time.Duration(1+d.rng.IntN(48*60)) * time.Minute)
		if done.Before(t) {
			done = t.Add(time.Minute)
		}
	case r < 85:
		done = due.Add(d.days(1, 5))
	default:
		return // left open: overdue once its time has passed
	}
	d.at(done, "complete a follow-up", func(ctx context.Context) error {
		_, err := d.crm.Tasks.Update(ctx, c.owner, id, 0, func(dst any) error {
			dst.(*models.Task).Status = models.TaskDone
			return nil
		})
		return err
	})
}

// demoProduct is something the demo company sells; prices in fen.
type demoProduct struct {
	name, sku string
	price     int64
}

var demoProducts = []demoProduct{
	{"离心泵 CP-100", "CP-100", 1_280_000}, {"不锈钢阀门 VL-25", "VL-25", 86_000}, {"变频控制柜 CC-7", "CC-7", 2_350_000},
	{"管道配件包 PK-3", "PK-3", 32_000}, {"年度维保服务", "SV-Y", 600_000}, {"安装调试服务", "SV-I", 150_000},
	{"Submersible pump SP-40", "SP-40", 940_000},
}

// planOrders plans a won customer's orders, their payments and the loyalty
// points they earn.
func (d *demoSeeder) planOrders(c *demoCustomer, won time.Time) {
	t := won
	for i := 0; i < 1+d.rng.IntN(6); i++ {
		t = d.workTime(t.Add(d.days(3, 60)))
		var items []models.LineItem
		for j := 0; j < 1+d.rng.IntN(3); j++ {
			p := pick(d, demoProducts)
			items = append(items, models.LineItem{Product: p.name, SKU: p.sku, Quantity: float64(1 + d.rng.IntN(10)), UnitPrice: p.price})
		}
		var amount int64
		for _, it := range items {
			amount += int64(it.Quantity) * it.UnitPrice
		}
		status := "completed"
		switch r := d.rng.IntN(100); {
		case r < 4:
			status = "cancelled"
		case d.end.Sub(t) < 30*24*time.Hour:
			status = pick(d, []string{"confirmed", "shipped"})
		}
		order := &demoOrder{}
		d.at(t, "take an order", func(ctx context.Context) error {
			o, err := d.crm.Orders.Create(ctx, c.owner, models.Order{ChildFields: models.ChildFields{CustomerID: c.id},
				OrderedOn: d.clock.t.In(d.shanghai).Format(time.DateOnly), PaymentTermDays: 30, Items: items, Status: status})
			order.id = o.ID
			d.counts["orders"]++
			return err
		})
		if status == "cancelled" {
			continue
		}
		paid := amount
		switch r := d.rng.IntN(100); {
		case r < 10:
			paid = 0
		case r < 25:
			paid = amount / 2
		}
		if paid > 0 {
			method := d.weighted(models.PaymentMethods[:6], []int{5, 50, 5, 20, 15, 5})
			d.at(d.workTime(t.Add(d.days(3, 45))), "receive a payment", func(ctx context.Context) error {
				_, err := d.crm.Payments.Create(ctx, c.owner, models.Payment{OrderID: order.id, Method: method, PaidAt: d.clock.t,
					Amount: paid, Reference: "TX" + strconv.Itoa(d.rng.IntN(1e8))})
				d.counts["payments"]++
				return err
			})
		}
		points := amount / 10_000 // a point per 100 yuan
		if points > 0 {
			d.at(t.Add(time.Minute), "earn loyalty points", func(ctx context.Context) error {
				_, err := d.crm.LoyaltyEntries.Create(ctx, c.owner, models.LoyaltyEntry{ChildFields: models.ChildFields{CustomerID: c.id},
					Kind: models.PointsEarn, Points: points, Reason: "订单积分", Reference: order.id})
				d.points[c.id] += points
				d.counts["loyalty_entries"]++
				return err
			})
		}
		if d.rng.IntN(8) == 0 {
			d.at(d.workTime(t.Add(d.days(10, 90))), "redeem loyalty points", func(ctx context.Context) error {
				redeem := d.points[c.id] / 2
				if redeem <= 0 {
					return nil
				}
				_, err := d.crm.LoyaltyEntries.Create(ctx, c.owner, models.LoyaltyEntry{ChildFields: models.ChildFields{CustomerID: c.id},
					Kind: models.PointsRedeem, Points: redeem, Reason: "积分兑换礼品"})
				d.points[c.id] -= redeem
				d.counts["loyalty_entries"]++
				return err
			})
		}
	}
}

type demoOrder struct{ id string }

var demoTickets = map[string][]string{
	"complaint": {"发货延迟", "Delivery was late"}, "repair": {"水泵异响", "控制柜报警", "Pump leaks"},
	"question": {"如何设置变频器", "How to order spare parts"}, "return": {"配件型号不符"}, "installation": {"新设备安装"},
	"suggestion": {"希望提供英文说明书"},
}

// planTickets plans a customer's service requests, their resolution and a
// satisfaction survey after some of them.
func (d *demoSeeder) planTickets(c *demoCustomer, won time.Time) {
	if d.rng.IntN(100) >= 45 {
		return
	}
	for i := 0; i < 1+d.rng.IntN(2); i++ {
		opened := d.workTime(won.Add(d.days(5, 200)))
		kind := d.weighted([]string{"repair", "question", "complaint", "installation", "return", "suggestion"}, []int{30, 25, 15, 15, 10, 5})
		priority := d.weighted(models.TicketPriorities, []int{10, 25, 50, 15})
		ticket := &models.Ticket{}
		d.at(opened, "open a ticket", func(ctx context.Context) error {
			t, err := d.crm.Tickets.Create(ctx, c.owner, models.Ticket{ChildFields: models.ChildFields{CustomerID: c.id},
				Type: kind, Priority: priority, Title: pick(d, demoTickets[kind]), Description: "客户来电反映 / reported by phone"})
			*ticket = t
			d.counts["tickets"]++
			return err
		})
		sla := time.Duration(map[string]int{models.PriorityUrgent: 4, models.PriorityHigh: 24, models.PriorityNormal: 72, models.PriorityLow: 168}[priority]) * time.Hour
		var resolved time.Time
		switch r := d.rng.IntN(100); {
		case r < 70:
			resolved = opened.Add(time.Duration(d.rng.Int64N(int64(sla))))
		case r < 90:
			resolved = opened.Add(sla + time.Duration(d.rng.Int64N(int64(3*sla))))
		default:
			continue // still open
		}
		d.at(resolved, "resolve a ticket", func(ctx context.Context) error {
			if err := d.moveTicket(ctx, ticket, models.TicketInProgress); err != nil {
				return err
			}
			return d.moveTicket(ctx, ticket, models.TicketResolved)
		})
		if d.rng.IntN(2) == 0 {
			d.at(resolved.Add(d.days(1, 3)), "close a ticket", func(ctx context.Context) error {
				return d.moveTicket(ctx, ticket, models.TicketClosed)
			})
		}
		if d.rng.IntN(100) < 60 {
			csat, _ := strconv.Atoi(d.weighted([]string{"5", "4", "3", "2", "1"}, []int{40, 30, 15, 10, 5}))
			nps := d.rng.IntN(11)
			if csat >= 4 {
				nps = 7 + d.rng.IntN(4) // the satisfied mostly recommend
			}
			service := min(5, csat+d.rng.IntN(2))
			d.at(resolved.Add(d.days(1, 5)), "take a survey", func(ctx context.Context) error {
				_, err := d.crm.Surveys.Create(ctx, c.owner, models.Survey{ChildFields: models.ChildFields{CustomerID: c.id},
					TakenAt: d.clock.t, CSAT: &csat, NPS: &nps, Ratings: models.SurveyRatings{ServiceAttitude: &service},
					Comment: pick(d, []string{"服务及时", "响应太慢", "工程师很专业", "Quick fix, thanks"}), TicketID: ticket.ID})
				d.counts["surveys"]++
				return err
			})
		}
	}
}

// moveTicket moves a ticket as its assignee.
func (d *demoSeeder) moveTicket(ctx context.Context, ticket *models.Ticket, status string) error {
	assignee, ok := d.actors[ticket.AssigneeID]
	if !ok {
		assignee = d.admin
	}
	t, err := d.crm.Tickets.Update(ctx, assignee, ticket.ID, 0, func(dst any) error {
		dst.(*models.Ticket).Status = status
		return nil
	})
	if err == nil {
		*ticket = t
	}
	return err
}

// customerFields makes up a customer: a company (six in ten) or a person,
// Chinese or English, with a unique mobile number.
func (d *demoSeeder) customerFields(region string) models.Customer {
	var f models.CustomerFields
	if d.rng.IntN(10) < 6 {
		f.Kind = models.KindCompany
		f.Name = d.companyName()
		f.CompanyName = f.Name
		f.CompanySize = pick(d, []string{"1-49", "50-199", "200-999", "1000+"})
	} else {
		f.Kind = models.KindPerson
		var english bool
		f.Name, english = d.personName()
		if english {
			d.serial++
			f.Emails = []models.Email{{Label: "work", Address: fmt.Sprintf("customer%d@example.com", d.serial)}}
		}
	}
	f.Phones = []models.Phone{{Label: "mobile", Number: d.mobile()}}
	f.Region = region
	f.Address.City = pick(d, demoCities[region])
	f.Industry = pick(d, []string{"制造业", "建筑", "市政水务", "化工", "食品饮料", "物业", "农业灌溉"})
	f.Source = d.weighted([]string{"referral", "online", "event", "cold_call", "advertising", "offline"}, []int{25, 25, 15, 15, 10, 10})
	f.CustomerType = d.weighted([]string{"normal", "vip", "key_account", "partner"}, []int{70, 15, 10, 5})
	f.Stage = d.weighted([]string{"lead", "prospect"}, []int{75, 25})
	f.Tags = []string{pick(d, []string{"水泵", "阀门", "控制柜", "维保"})}
	return models.Customer{CustomerFields: f}
}

var demoCities = map[string][]string{
	"华东": {"上海", "杭州", "苏州", "南京", "宁波"}, "华南": {"广州", "深圳", "厦门", "佛山"}, "华北": {"北京", "天津", "济南", "石家庄"},
	"西南": {"成都", "重庆", "昆明"}, "华中": {"武汉", "长沙", "郑州"},
}

var demoNotes = map[string][]string{
	"phone":   {"电话沟通需求，客户关注交期", "回访使用情况", "Called about the quote", "确认付款计划"},
	"wechat":  {"微信发送报价单", "微信发送产品资料", "Sent the brochure on WeChat"},
	"visit":   {"上门拜访，演示样品", "现场勘查泵房", "Site visit with the plant engineer"},
	"meeting": {"季度业务回顾会议", "Quarterly review meeting", "技术交流会"},
	"email":   {"邮件发送合同草稿", "Emailed the contract draft"},
}

// mobile is a unique mainland mobile number, written as people write them.
func (d *demoSeeder) mobile() string {
	d.serial++
	n := (int64(d.serial)*7919 + 1234567) % 100_000_000
	prefix := pick(d, []string{"138", "139", "186", "135", "150", "177"})
	digits := prefix + fmt.Sprintf("%08d", n)
	if d.rng.IntN(2) == 0 {
		return digits[:3] + " " + digits[3:7] + " " + digits[7:]
	}
	return digits
}

var (
	demoSurnames  = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
	demoGiven     = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚英华建文辉玲鹏宇")
	demoFirst     = []string{"James", "Mary", "Robert", "Linda", "Michael", "Sarah", "Daniel", "Olivia", "Thomas", "Anna"}
	demoLast      = []string{"Smith", "Johnson", "Brown", "Taylor", "Wilson", "Chen", "Wong", "Lee", "Müller", "Schmidt"}
	demoCityNames = []string{"上海", "北京", "广州", "深圳", "杭州", "苏州", "南京", "成都", "武汉", "宁波", "天津", "厦门"}
	demoCores     = []string{"华泰", "恒信", "宏达", "鑫源", "天成", "瑞丰", "中科", "金桥", "永安", "海川", "东方", "新锐", "博远", "凯盛", "联创", "德润"}
	demoTrades    = []string{"机械", "泵业", "阀门", "电气", "贸易", "科技", "建材", "化工", "水务", "环保"}
	demoEnCores   = []string{"Harbor", "Summit", "Bluewater", "Pioneer", "Apex", "Riverside", "Northstar", "Evergreen"}
	demoEnTrades  = []string{"Pumps", "Valves", "Engineering", "Trading", "Water Systems", "Foods"}
)

// personName is a Chinese name (eight in ten) or an English one.
func (d *demoSeeder) personName() (string, bool) {
	if d.rng.IntN(10) < 8 {
		name := []rune{pick(d, demoSurnames), pick(d, demoGiven)}
		if d.rng.IntN(2) == 0 {
			name = append(name, pick(d, demoGiven))
		}
		return string(name), false
	}
	return pick(d, demoFirst) + " " + pick(d, demoLast), true
}

// companyNames are every company name the demo can use, shuffled: customers
// take them in turn, so two customers share a company only once they run
// out (and are then flagged as possible duplicates, as in life).
func (d *demoSeeder) companyNames() []string {
	var names []string
	for _, city := range demoCityNames {
		for _, core := range demoCores {
			for _, trade := range demoTrades {
				names = append(names, city+core+trade+"有限公司")
			}
		}
	}
	for _, core := range demoEnCores {
		for _, trade := range demoEnTrades {
			names = append(names, core+" "+trade+" Co., Ltd.")
		}
	}
	d.rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	return names
}

func (d *demoSeeder) companyName() string {
	if len(d.company) == 0 {
		d.company = d.companyNames()
	}
	name := d.company[0]
	d.company = d.company[1:]
	return name
}
