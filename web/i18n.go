package web

import (
	"errors"
	"fmt"
	"html/template"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/export"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// lang is the language of a page: Vietnamese by default, English on
// request (lang=en in the URL).
type lang int

const (
	vi lang = iota
	en
)

func langOf(s string) lang {
	if s == "en" {
		return en
	}
	return vi
}

func (l lang) code() string {
	if l == en {
		return "en"
	}
	return "vi"
}

func (l lang) export() export.Lang {
	if l == en {
		return export.En
	}
	return export.Vi
}

// t is the text of key in l.
func (l lang) t(key string) string {
	s, ok := texts[key]
	if !ok {
		return key
	}
	return s[l]
}

// pick is vi or en.
func (l lang) pick(v, e string) string {
	if l == en && e != "" {
		return e
	}
	return v
}

var texts = map[string][2]string{
	"app":               {"Chỉ số hài lòng SIPAS", "SIPAS satisfaction index"},
	"signin":            {"Đăng nhập", "Sign in"},
	"signout":           {"Đăng xuất", "Sign out"},
	"token":             {"Mã truy cập (token) của cán bộ phân tích hoặc quản trị", "Analyst or admin access token"},
	"token_help":        {"Mã bắt đầu bằng sps_. Quản trị viên cấp mã bằng lệnh sipas admin credential create.", "It starts with sps_. An admin issues one with sipas admin credential create."},
	"err_csrf":          {"Phiên biểu mẫu đã hết hạn. Vui lòng thử lại.", "The form expired. Please try again."},
	"err_rate":          {"Quá nhiều lần đăng nhập. Vui lòng chờ một phút.", "Too many sign-in attempts. Please wait a minute."},
	"err_signin":        {"Mã truy cập không hợp lệ, đã hết hạn, bị thu hồi hoặc không có quyền xem chỉ số.", "The token is invalid, expired, revoked or may not read indices."},
	"err_scope":         {"Tài khoản này không được xem số liệu ngoài phạm vi tỉnh của mình.", "This credential may not read figures outside its provinces."},
	"err_internal":      {"Lỗi máy chủ. Vui lòng thử lại sau.", "Server error. Please try again later."},
	"error":             {"Lỗi", "Error"},
	"national":          {"Toàn quốc", "National"},
	"provinces":         {"Tỉnh, thành phố", "Provinces"},
	"unit":              {"Đơn vị", "Unit"},
	"units":             {"Đơn vị", "Units"},
	"period":            {"Kỳ", "Period"},
	"year":              {"Năm", "Year"},
	"whole_year":        {"Cả năm", "Year"},
	"quarter":           {"Quý", "Quarter"},
	"month":             {"Tháng", "Month"},
	"boundaries":        {"Địa giới", "Boundaries"},
	"b_current":         {"Hiện nay (sau sáp nhập 2025)", "Current (after the 2025 merger)"},
	"b_collected":       {"Như khi thu thập", "As collected"},
	"channel":           {"Kênh", "Channel"},
	"ch_all":            {"Tất cả", "All"},
	"ch_kiosk":          {"Ki-ốt", "Kiosk"},
	"ch_field":          {"Khảo sát thực địa", "Field survey"},
	"ch_post":           {"Bưu chính", "Post"},
	"ch_online":         {"Trực tuyến", "Online"},
	"ch_phone":          {"Điện thoại", "Phone"},
	"questionnaire":     {"Bộ câu hỏi", "Questionnaire"},
	"show":              {"Xem", "Show"},
	"print":             {"In báo cáo", "Print report"},
	"ranking":           {"Xếp hạng các tỉnh, thành phố", "Ranking of provinces"},
	"rank":              {"Hạng", "Rank"},
	"name":              {"Tên", "Name"},
	"code":              {"Mã", "Code"},
	"value":             {"Giá trị (%)", "Value (%)"},
	"interval":          {"Khoảng tin cậy 95%", "95% interval"},
	"state":             {"Trạng thái", "State"},
	"rank_change":       {"Thay đổi hạng", "Rank change"},
	"value_change":      {"Thay đổi giá trị", "Value change"},
	"previous":          {"Kỳ trước", "Previous period"},
	"mean":              {"Trung bình các tỉnh (không trọng số)", "Mean of provinces (unweighted)"},
	"pooled":            {"Gộp chung cả nước", "Pooled national figure"},
	"top5":              {"5 tỉnh cao nhất", "Top 5"},
	"bottom5":           {"5 tỉnh thấp nhất", "Bottom 5"},
	"map":               {"Bản đồ ô theo địa lý", "Tile map by geography"},
	"map_note":          {"Mỗi ô là một tỉnh, xếp gần đúng theo vị trí địa lý; màu theo giá trị SIPAS.", "One tile per province, laid out roughly by geography; coloured by SIPAS value."},
	"map_other":         {"Mã tỉnh không có trên bản đồ hiện nay (địa giới như khi thu thập):", "Codes not on today's map (boundaries as collected):"},
	"legend":            {"Chú giải", "Legend"},
	"table_alt":         {"Bảng số liệu của biểu đồ", "The chart's figures as a table"},
	"download":          {"Tải về", "Download"},
	"tree":              {"Cây chỉ số: SIPAS → khối → nhóm → câu hỏi", "Formula tree: SIPAS → blocks → groups → items"},
	"elements":          {"Năm yếu tố dịch vụ hành chính công", "The five service elements"},
	"unit_ranking":      {"Xếp hạng các đơn vị", "Ranking of units"},
	"series":            {"Diễn biến theo thời gian", "Time series"},
	"weak":              {"Điểm yếu", "Weak points"},
	"lowest":            {"Thấp nhất", "Lowest"},
	"drops":             {"Giảm nhiều nhất so với kỳ trước", "Largest drops against the previous period"},
	"expectation":       {"Hài lòng bên cạnh mong đợi", "Satisfaction beside expectation"},
	"satisfaction":      {"Hài lòng", "Satisfaction"},
	"expect_items":      {"Mong đợi (tỷ lệ người dân chọn)", "Expectations (share choosing)"},
	"respondents":       {"Số người trả lời", "Respondents"},
	"level":             {"Cấp", "Level"},
	"list":              {"Danh sách", "List"},
	"national_val":      {"Toàn quốc", "National"},
	"change":            {"Thay đổi", "Change"},
	"no_rows":           {"Không có dòng nào.", "No rows."},
	"flagged_excluded":  {"%d phiếu bị gắn cờ chất lượng dữ liệu (quá nhanh, quá sát nhau, trùng lặp, lệch đồng hồ) không được tính.", "%d responses flagged for data quality (too fast, too soon, identical runs, clock skew) are left out."},
	"flagged_included":  {"Đã tính cả %d phiếu bị gắn cờ chất lượng dữ liệu.", "%d responses flagged for data quality are counted."},
	"flagged_include":   {"Tính cả các phiếu này", "Count them too"},
	"flagged_leave_out": {"Bỏ các phiếu này", "Leave them out"},
	"flagged_option":    {"Tính cả phiếu bị gắn cờ", "Include flagged responses"},
	"suppressed_units":  {"đơn vị bị ẩn vì dưới %d người trả lời (không hiển thị tên).", "units suppressed for fewer than %d respondents (names not shown)."},
	"states_note":       {"Không có dữ liệu: không ai trả lời. Ẩn: dưới k người trả lời, không công bố gì. Mẫu chưa đủ: có giá trị nhưng n dưới mức tối thiểu, không xếp hạng.", "No data: nobody answered. Suppressed: fewer than k respondents, nothing published. Insufficient: a value is shown but n is below the minimum, so it is not ranked."},
	"up":                {"tăng", "up"},
	"down":              {"giảm", "down"},
	"same":              {"giữ nguyên", "same"},
	"signed_in_as":      {"Đăng nhập với vai trò", "Signed in as"},
	"skip":              {"Bỏ qua đến nội dung chính", "Skip to main content"},
	"other_lang":        {"English", "Tiếng Việt"},
	"figures_for":       {"Số liệu", "Figures"},
	"rules_text":        {"k = %d: đơn vị dưới %d người trả lời bị ẩn; n < %d: mẫu chưa đủ.", "k = %d: units with fewer than %d respondents are suppressed; n < %d: insufficient sample."},
	"formula":           {"Công thức", "Formula"},
	"states_short":      {"Không có dữ liệu / ẩn / mẫu chưa đủ", "No data / suppressed / insufficient"},
	"fleet":             {"Ki-ốt khảo sát", "Kiosk fleet"},
	"fleet_as_of":       {"Tình trạng lúc", "Status as of"},
	"vn_time":           {"giờ Việt Nam", "Vietnam time"},
	"fleet_kiosks":      {"Số ki-ốt", "Kiosks"},
	"fleet_silent":      {"Im lặng", "Silent"},
	"fleet_note":        {"Mỗi ki-ốt gửi tín hiệu mỗi phút. Ki-ốt im lặng: không có tín hiệu quá 2 giờ làm việc (thứ Hai–thứ Bảy, 07:00–17:00). Lệch đồng hồ quá 5 phút: phiếu bị gắn cờ.", "Each kiosk reports every minute. Silent: no report for more than 2 working hours (Monday–Saturday, 07:00–17:00). A clock more than 5 minutes off gets its responses flagged."},
	"fleet_none":        {"Chưa có ki-ốt nào.", "No kiosks yet."},
	"credential":        {"Mã truy cập", "Credential"},
	"province":          {"Tỉnh", "Province"},
	"last_heartbeat":    {"Tín hiệu gần nhất", "Last heartbeat"},
	"last_response":     {"Phiếu gần nhất", "Last response"},
	"queue":             {"Phiếu chờ gửi", "Queue"},
	"oldest_pending":    {"Chờ lâu nhất", "Oldest pending"},
	"dead_letters":      {"Phiếu lỗi", "Dead letters"},
	"version":           {"Phiên bản", "Version"},
	"clock_offset":      {"Lệch đồng hồ", "Clock offset"},
	"never":             {"chưa bao giờ", "never"},
	"k_silent":          {"Im lặng", "Silent"},
	"k_never":           {"Chưa kết nối", "Never reported"},
	"k_ok":              {"Hoạt động", "Reporting"},
	"err_admin":         {"Chỉ quản trị viên được xem danh sách ki-ốt.", "Only an admin may see the kiosk fleet."},
	"your_provs":        {"Tỉnh của bạn", "Your provinces"},
}

var funcs = template.FuncMap{
	"t":   func(l lang, key string) string { return l.t(key) },
	"num": fmtNum,
	"signed": func(v *float64) string {
		if v == nil {
			return ""
		}
		return fmt.Sprintf("%+.2f", *v)
	},
	"int":  func(v int64) string { return strconv.FormatInt(v, 10) },
	"pick": func(l lang, v, e string) string { return l.pick(v, e) },
	"dict": func(l lang, rows []figure) tableData { return tableData{L: l, Rows: rows} },
}

// tableData is what the table templates take.
type tableData struct {
	L    lang
	Rows []figure
}

// fmtNum shows a value with two decimals, or nothing.
func fmtNum(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', 2, 64)
}

func itoa(n int) string { return strconv.Itoa(n) }

func channelProto(c sipas.Channel) sipasv1.Channel { return sipasv1.Channel(c) }

// statusOf turns a domain error of the dashboard's own parsing into the
// status the API would give for it.
func statusOf(err error) error {
	var e *sipas.Error
	if errors.As(err, &e) && e.Kind == sipas.KindInvalid {
		return status.Error(codes.InvalidArgument, e.Error())
	}
	return status.Error(codes.InvalidArgument, err.Error())
}

func invalidParam(name, msg string) error {
	return status.Error(codes.InvalidArgument, name+": "+msg)
}
