//! `pylon -c` on bad configurations: every case is a file and the diagnostics it must give,
//! each as `bad.cfg:LINE:COL: SEVERITY: ...MESSAGE...`, with the caret under column COL.
//!
//! A case asserts the exit code (1 when an error is expected, 0 when only warnings are), that
//! every expected diagnostic is printed, and that no other error is: the number of `error:`
//! lines equals the number of errors expected. Warnings that merely follow from an error (a
//! frontend whose only `bind` line was refused has "no 'bind' directive") are not listed.

mod support;

use std::path::Path;

use support::{Run, TempDir, check_config, pylon};

const E: &str = "error";
const W: &str = "warning";

/// One bad configuration: its lines (line N of the file is `lines[N - 1]`) and the diagnostics
/// `(line, col, severity, message)` it must give. The message is a substring of the printed one;
/// `…` in it stands for any text (so that long messages can be checked by their two ends).
struct Case {
    name: &'static str,
    lines: &'static [&'static str],
    expect: &'static [(u32, u32, &'static str, &'static str)],
}

/// Declares a case: `case!(name, [lines...], [(line, col, severity, message)...])`.
macro_rules! case {
    ($name:ident, [$($line:expr),* $(,)?], [$(($l:expr, $c:expr, $sev:expr, $msg:expr)),* $(,)?] $(,)?) => {
        Case { name: stringify!($name), lines: &[$($line),*], expect: &[$(($l, $c, $sev, $msg)),*] }
    };
}

static CASES: &[Case] = &[
    // ---- the lexer ----------------------------------------------------------------------
    case!(
        unterminated_double_quote,
        ["global", "    maxconn \"100"],
        [(2, 13, E, "unmatched double quote: the word runs to the end of the line")],
    ),
    case!(
        unterminated_single_quote,
        ["global", "    maxconn '100"],
        [(2, 13, E, "unmatched single quote: the word runs to the end of the line")],
    ),
    case!(
        bad_hex_escape,
        ["global", "    maxconn 10\\x4g"],
        [(2, 15, E, "invalid escape: '\\x' must be followed by two hexadecimal digits")],
    ),
    case!(
        dollar_digit_in_double_quotes,
        ["global", "    setenv PRICE \"costs $5\""],
        [(2, 26, E, "'$' inside double quotes must start a variable name")],
    ),
    case!(variable_brace_not_closed, ["global", "    setenv A \"${HOME\""], [(2, 16, E, "'${' without a closing '}'")]),
    case!(
        variable_word_expansion,
        ["global", "    setenv A \"${LIST[*]}\""],
        [(2, 21, E, "'${NAME[*]}' (expanding a variable into several words) is not supported yet")],
    ),
    // ---- sections and keywords ----------------------------------------------------------
    case!(
        line_outside_any_section,
        ["maxconn 100", "global", "    maxconn 100"],
        [(1, 1, E, "'maxconn' is outside any section; every file must start with a section keyword")],
    ),
    case!(
        unknown_keyword_with_suggestion,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bnd :80",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(7, 5, E, "unknown keyword 'bnd' in frontend 'web'; did you mean 'bind'?")],
    ),
    case!(
        unknown_timeout,
        ["defaults", "    timeout connect 5s", "    timeout foo 5s"],
        [(
            3,
            13,
            E,
            "unknown keyword 'timeout foo' in defaults; pylon knows 'timeout' followed by: connect, client, server"
        )],
    ),
    case!(
        unknown_option,
        ["defaults", "    option foo"],
        [(2, 12, E, "unknown keyword 'option foo' in defaults; pylon knows 'option' followed by: redispatch, tcplog")],
    ),
    case!(
        global_keyword_in_frontend,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    nbthread 4",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 5, E, "'nbthread' is a global keyword; it belongs in the 'global' section, not in frontend 'web'")],
    ),
    case!(
        proxy_keyword_in_global,
        ["global", "    maxconn 100", "    mode http"],
        [(3, 5, E, "'mode' is a proxy keyword; it belongs in a defaults, frontend, backend or listen section")],
    ),
    case!(
        bind_in_defaults,
        ["defaults", "    mode tcp", "    bind :80"],
        [(3, 5, E, "'bind' is not allowed in a defaults section")],
    ),
    case!(
        server_in_frontend_is_ignored_with_a_warning,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    server s1 127.0.0.1:9000",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 5, W, "'server' is ignored: frontend 'web' has no backend capability")],
    ),
    case!(
        too_many_arguments,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    default_backend app other",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 25, E, "'default_backend' cannot handle unexpected argument 'other'; usage: default_backend <backend>")],
    ),
    case!(
        too_few_arguments,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "backend app",
            "    server s1",
        ],
        [(7, 14, E, "'server' expects <name> <addr>[:<port>] [options...]")],
    ),
    // ---- values -------------------------------------------------------------------------
    case!(
        time_with_unknown_unit,
        ["defaults", "    timeout connect 5x"],
        [(2, 22, E, "invalid value '5x' for 'timeout connect': unexpected 'x' after the number")],
    ),
    case!(
        time_with_decimals,
        ["defaults", "    timeout client 3.5s"],
        [(2, 21, E, "invalid value '3.5s' for 'timeout client': unexpected '.5s' after the number")],
    ),
    case!(
        time_too_large,
        ["defaults", "    timeout server 25d"],
        [(2, 20, E, "invalid value '25d' for 'timeout server': time too large: the maximum is 2147483647 ms")],
    ),
    case!(
        fifteen_min_is_only_a_warning,
        ["defaults", "    mode tcp", "    timeout connect 5s", "    timeout client 15min", "    timeout server 30s"],
        [(4, 23, W, "unexpected 'in' after the time '15min' of 'timeout client' is ignored")],
    ),
    case!(
        bad_size,
        ["global", "    tune.bufsize 16kb"],
        [(2, 20, E, "invalid value '16kb' for 'tune.bufsize': unexpected 'kb' after the number")],
    ),
    case!(
        nbthread_zero,
        ["global", "    nbthread 0"],
        [(2, 14, E, "invalid value '0' for 'nbthread': expected a value from 1 to 1024")],
    ),
    case!(
        weight_too_large,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout server 30s",
            "backend app",
            "    server s1 127.0.0.1:9000 weight 300",
        ],
        [(6, 37, E, "invalid value '300' for 'weight': expected a value from 0 to 256")],
    ),
    // ---- addresses ----------------------------------------------------------------------
    case!(
        server_port_too_large,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout server 30s",
            "backend app",
            "    server s1 127.0.0.1:70000",
        ],
        [(6, 25, E, "invalid port '70000': expected 1-65535")],
    ),
    case!(
        bind_port_zero,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    bind :0",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 11, E, "invalid port '0': ports run from 1 to 65535")],
    ),
    case!(
        bind_without_port,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    bind 127.0.0.1",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 10, E, "missing port specification in '127.0.0.1'")],
    ),
    case!(
        bind_port_range_reversed,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    bind 127.0.0.1:9000-8000",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 20, E, "invalid port range '9000-8000': the first port is above the last")],
    ),
    case!(
        bind_unix_socket,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    bind /run/pylon.sock",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 10, E, "Unix socket binds ('/run/pylon.sock') are not supported yet")],
    ),
    // ---- cross-checks -------------------------------------------------------------------
    case!(
        undefined_default_backend,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    default_backend nope",
        ],
        [(8, 21, E, "no backend named 'nope'")],
    ),
    case!(
        undefined_use_backend,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    use_backend other if TRUE",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 17, E, "no backend named 'other'")],
    ),
    case!(
        use_backend_names_a_frontend,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    use_backend admin",
            "frontend admin",
            "    bind :8081",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 17, E, "'admin' is a frontend, not a backend")],
    ),
    case!(
        http_frontend_with_tcp_backend,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    mode http",
            "    bind :8080",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(9, 21, E, "frontend 'web' is in mode http but backend 'app' is in mode tcp; set 'mode http' in the backend")],
    ),
    case!(
        duplicate_frontend_names,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    default_backend app",
            "frontend web",
            "    bind :8081",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(9, 10, E, "frontend 'web' has the same name as frontend 'web'")],
    ),
    case!(
        duplicate_server_names,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout server 30s",
            "backend app",
            "    server s1 127.0.0.1:9000",
            "    server s1 127.0.0.1:9001",
        ],
        [(7, 12, E, "backend 'app' has two servers named 's1'")],
    ),
    case!(
        two_frontends_on_one_address,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend a",
            "    bind 127.0.0.1:8080",
            "    default_backend app",
            "frontend b",
            "    bind 127.0.0.1:8080",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(10, 10, E, "address 127.0.0.1:8080 is already bound by frontend 'a'")],
    ),
    case!(
        one_address_twice_in_a_frontend,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    bind 0.0.0.0:8080",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 10, E, "address 0.0.0.0:8080 is already bound by this section")],
    ),
    case!(
        unresolvable_server,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout server 30s",
            "backend app",
            "    server s1 db.invalid:5432",
        ],
        [(6, 15, E, "could not resolve address 'db.invalid' of server 'app/s1'")],
    ),
    case!(
        unresolvable_server_with_init_addr_none_is_only_a_warning,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout server 30s",
            "backend app",
            "    server s1 db.invalid:5432 init-addr last,libc,none",
        ],
        [(6, 15, W, "server 'app/s1' starts in maintenance: no address for 'db.invalid' at start-up")],
    ),
    // ---- defaults sections --------------------------------------------------------------
    case!(
        from_names_an_unknown_defaults,
        [
            "defaults base",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "backend app from bsae",
            "    server s1 127.0.0.1:9000",
        ],
        [(6, 18, E, "no defaults section named 'bsae' is declared before this backend")],
    ),
    case!(
        // The first one is referenced with `from`, so HAProxy refuses the second one too.
        duplicate_named_defaults,
        [
            "defaults base",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout server 30s",
            "backend app from base",
            "    server s1 127.0.0.1:9000",
            "defaults base",
            "    mode tcp",
        ],
        [(7, 10, E, "defaults section 'base' is redefined after a section used it with 'from'")],
    ),
    // ---- ACLs and conditions ------------------------------------------------------------
    case!(
        unknown_acl_in_condition,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    acl internal src 10.0.0.0/8",
            "    use_backend app if internl",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(9, 24, E, "no such ACL: 'internl'")],
    ),
    case!(
        condition_ending_with_or,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    acl internal src 10.0.0.0/8",
            "    use_backend app if internal or",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(9, 33, E, "a condition cannot end with 'or'")],
    ),
    case!(
        unclosed_anonymous_acl,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    use_backend app if { src 10.0.0.1",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 24, E, "'{' opens an anonymous ACL that is never closed with '}'")],
    ),
    case!(
        unknown_fetch,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    acl x source 10.0.0.0/8",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 11, E, "unknown fetch method 'source'; expected one of: src, src_port, dst, dst_port")],
    ),
    case!(
        http_fetch_in_a_tcp_frontend,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    acl site hdr(host) -i example.com",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(
            8,
            14,
            E,
            "fetch 'hdr' reads an HTTP request, but frontend 'web' is in mode tcp; set 'mode http' or use a layer-4 fetch"
        )],
    ),
    case!(
        acl_pattern_file_missing,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    acl blocked src -f /etc/pylon/blocked.lst",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 24, E, "cannot read pattern file '/etc/pylon/blocked.lst': No such file or directory")],
    ),
    case!(
        bad_cidr,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    acl internal src 10.0.0.0/33",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(8, 31, E, "'33' is not a prefix length from 0 to 32")],
    ),
    // ---- what pylon does not support (yet) ----------------------------------------------
    case!(
        no_before_a_keyword_that_is_not_an_option,
        ["defaults", "    no mode tcp"],
        [(2, 5, E, "'no' applies only to options, not to 'mode'")],
    ),
    case!(
        conditional_block_is_reported_once,
        [
            "global",
            ".if defined(PYLON_DEBUG)",
            "    nonsense here",
            "    nbthread 0",
            ".else",
            "    more nonsense",
            ".endif",
            "    maxconn 100",
        ],
        [(2, 1, E, "conditional blocks ('.if' ... '.endif') are not supported yet; the block is skipped")],
    ),
    case!(
        userlist_mistakes,
        [
            "userlist admins",
            "    group ops users bob,carol",
            "    user alice password $6$xyz",
            "    user bob insecure-password pw groups devs",
            "    user bob insecure-password pw2",
            "frontend web",
            "    mode http",
            "    bind :8080",
            "    timeout client 5s",
            "    http-request auth if !{ http_auth(admin) }",
        ],
        [
            (2, 25, E, "user 'carol' of group 'ops' is not declared in userlist 'admins'"),
            (3, 25, E, "not a crypt(3) SHA-512 or SHA-256 hash"),
            (4, 42, E, "group 'devs' is not declared in userlist 'admins'"),
            (5, 10, E, "user 'bob' is declared twice in userlist 'admins'"),
            (10, 29, E, "no userlist named 'admin'"),
        ],
    ),
    case!(mode_health, ["defaults", "    mode health"], [(2, 10, E, "'mode health' was removed from HAProxy (2.4)")]),
    case!(
        unknown_balance_algorithm,
        ["defaults", "    balance wrr"],
        [(
            2,
            13,
            E,
            "unknown balance algorithm 'wrr'; expected roundrobin, static-rr, leastconn, first, source, uri, url_param, hdr(<name>) or random"
        )],
    ),
    case!(
        balance_options_are_checked,
        [
            "defaults",
            "    balance uri depth x",
            "    balance hdr",
            "    balance random(0)",
            "    cookie SRV insert maxidle 1h"
        ],
        [
            (2, 23, E, "'x' is not a number"),
            (3, 13, E, "'balance hdr' expects a header name: hdr(<name>)"),
            (4, 13, E, "'random(0)': the number of draws must be 1 to 100"),
            (5, 23, E, "cookie option 'maxidle' is not supported yet"),
        ],
    ),
    case!(
        health_check_mistakes,
        [
            "backend be",
            "    http-check expect status 2xx",
            "    tcp-check send-binary 0g",
            "    tcp-check expect rstring (",
            "    server s1 127.0.0.1:80 check init-state sideways",
            "    server s2 127.0.0.1 check",
            "    cookie SRV insert",
            "    server s3 127.0.0.1:81 cookie a",
            "    server s4 127.0.0.1:82 cookie a",
        ],
        [
            (2, 30, E, "'2xx' is not a status code, range or list"),
            (3, 27, E, "'0g' is not hexadecimal bytes"),
            (4, 30, E, "invalid regular expression '(': unclosed group"),
            (5, 45, E, "'sideways' is not a valid value for 'init-state'"),
            (6, 12, W, "server 'be/s2' has 'check' but no fixed port: it is not checked"),
            (9, 12, E, "servers of 'be' share the cookie value 'a'"),
        ],
    ),
    // ---- access logs ----------------------------------------------------------------------
    case!(
        log_format_unknown_variable_is_named_where_it_is,
        ["defaults", "    mode http", "    log-format \"%ci:%cp %Tz %ST\""],
        [(3, 25, E, "unknown log-format variable '%Tz'")],
    ),
    case!(
        log_format_errors_point_into_the_string,
        [
            "defaults",
            "    log-format \"%{+Z}ci\"",
            "    log-format \"%ci %[src\"",
            "    log-format '%[nope] %ci'",
            "    log-format \"%ci %\"",
            "    log-format \"%ci %lc\"",
        ],
        [
            (2, 19, E, "unknown flag 'Z'"),
            (3, 21, E, "missing ']' after '%['"),
            (4, 19, E, "nope"),
            (5, 21, E, "a format cannot end with '%'"),
            (6, 21, E, "log-format variable '%lc' is not supported yet"),
        ],
    ),
    case!(log_format_takes_one_word, ["defaults", "    log-format %ci %cp"], [(2, 20, E, "log-format")],),
    case!(
        log_targets_are_checked,
        [
            "global",
            "    log 127.0.0.1:99999 local0",
            "    log ring@buf local0",
            "    log tcp@127.0.0.1:514 local0",
            "    log global local0",
            "    log /dev/log local9",
            "defaults",
            "    log global local0",
            "    option httplog verbose",
        ],
        [
            (2, 9, E, "invalid port '99999'"),
            (3, 9, E, "log rings ('ring@') are not supported"),
            (4, 9, E, "syslog over TCP is not supported"),
            (5, 9, E, "'log global' belongs in a proxy or defaults section"),
            (6, 18, E, "local9"),
            (8, 16, E, "'log global' takes no other argument, not 'local0'"),
            (9, 20, E, "'option httplog' takes 'clf' or nothing, not 'verbose'"),
        ],
    ),
    case!(
        log_formats_that_cannot_be_used_warn,
        [
            "global",
            "    log 127.0.0.1 local0",
            "defaults",
            "    timeout client 1s",
            "frontend tcp_with_httplog",
            "    bind 127.0.0.1:7001",
            "    log global",
            "    option httplog",
            "frontend no_target",
            "    bind 127.0.0.1:7002",
            "    option tcplog",
        ],
        [
            (
                8,
                5,
                W,
                "'option httplog' is not usable with frontend 'tcp_with_httplog' (it needs 'mode http'); falling back to 'option tcplog'"
            ),
            (11, 5, W, "log format ignored for frontend 'no_target' since it has no log address"),
        ],
    ),
    case!(
        proxy_ids_clash,
        ["frontend a", "    id 3", "backend b", "    id 3"],
        [(4, 8, E, "proxy 'b' has the same ID (3) as proxy 'a'")],
    ),
    case!(
        capture_lines_are_checked,
        [
            "defaults",
            "    capture request header Host len 10",
            "frontend fe",
            "    bind 127.0.0.1:7001",
            "    capture request header Host",
            "    capture request header Host size 10",
            "    capture response header X-A len many",
            "    capture request header Bad:Name len 3",
            "    capture response header X-B len 70000",
            "    capture cookie a;b len 3",
            "    capture foo bar",
            "    default_backend be",
            "backend be",
            "    capture cookie SESS len 10",
            "    server s1 127.0.0.1:9000",
        ],
        [
            (2, 5, E, "'capture request header' is not allowed in a defaults section"),
            (5, 32, E, "'capture request header' expects <name> len <length>"),
            (6, 33, E, "'capture request header' expects 'len' after the name, not 'size'"),
            (7, 37, E, "invalid value 'many' for 'capture response header'"),
            (8, 28, E, "'Bad:Name' is not a valid header name"),
            (9, 37, E, "invalid value '70000' for 'capture response header': expected a value from 0 to 65535"),
            (10, 20, E, "'a;b' is not a valid cookie name"),
            (
                11,
                13,
                E,
                "unknown keyword 'capture foo' in frontend 'fe'; pylon knows 'capture' followed by: request header, response header, cookie"
            ),
            (14, 5, W, "'capture cookie' is ignored: backend 'be' has no frontend capability"),
        ],
    ),
    case!(
        declare_capture_is_refused_with_its_reason,
        ["frontend fe", "    declare capture request len 10"],
        [(
            2,
            5,
            E,
            "'declare capture' is not supported by pylon: capture slots are filled by 'http-request capture' and 'http-response capture', which pylon does not implement"
        )],
    ),
    case!(
        capture_and_unique_id_settings_that_cannot_act_warn,
        [
            "defaults",
            "    timeout client 1s",
            "    timeout connect 1s",
            "    timeout server 1s",
            "frontend web",
            "    mode http",
            "    bind 127.0.0.1:7001",
            "    capture cookie SESSION len 100",
            "    capture cookie JSESSIONID= len 20",
            "    unique-id-header X-Request-ID",
            "    default_backend app",
            "frontend db",
            "    bind 127.0.0.1:7002",
            "    capture request header Host len 10",
            "    default_backend be",
            "backend app",
            "    mode http",
            "    server s1 127.0.0.1:9000",
            "backend be",
            "    server s1 127.0.0.1:9000",
        ],
        [
            (8, 32, W, "truncating the cookie capture length to 63 bytes"),
            (9, 5, W, "'capture cookie' replaces the earlier one: a frontend captures one cookie"),
            (10, 5, W, "'unique-id-header' has no effect in frontend 'web' without a 'unique-id-format'"),
            (14, 5, W, "'capture' lines are ignored in frontend 'db': it is in mode tcp"),
        ],
    ),
    case!(
        unique_id_and_logasap_lines_are_checked,
        [
            "defaults",
            "    unique-id-format \"%ci %Tz\"",
            "    unique-id-header \"X Bad\"",
            "    option logasap now",
            "    unique-id-format %ci %cp",
            "    unique-id-format \"%ci %[req.hdr(x\"",
        ],
        [
            (2, 27, E, "unknown log-format variable '%Tz'"),
            (3, 22, E, "'X Bad' is not a valid header name"),
            (4, 20, E, "'option logasap' cannot handle unexpected argument 'now'"),
            (5, 26, E, "'unique-id-format' cannot handle unexpected argument '%cp'"),
            (6, 27, E, "missing ']' after '%['"),
        ],
    ),
    case!(
        log_sample_is_checked,
        [
            "global",
            "    log 127.0.0.1 sample 0:3 local0",
            "    log 127.0.0.1 sample 1-2 local0",
            "    log 127.0.0.1 sample 1-3,2:5 local0",
            "    log 127.0.0.1 sample 1-4:3 local0",
            "    log 127.0.0.1 sample 1,x:3 local0",
            "    log 127.0.0.1 len 200 sample",
            "defaults",
            "    log 127.0.0.1 sample 3-2:4 local0",
        ],
        [
            (2, 26, E, "invalid range limit '0': expected a number from 1 to 1000000"),
            (3, 26, E, "'1-2' lacks the sample size: write <ranges>:<size>"),
            (4, 30, E, "sample ranges overlap: line 2 is in two of them"),
            (5, 30, E, "sample size 3 is below the highest range limit 4"),
            (6, 28, E, "invalid range limit 'x'"),
            (7, 33, E, "'log' expects <target> [len <n>] [format <fmt>] [sample <ranges>:<size>] <facility>"),
            (9, 26, E, "invalid range '3-2': its low limit is above its high one"),
        ],
    ),
    case!(
        stats_socket_bad_level,
        ["global", "    stats socket /run/pylon.sock mode 600 level root"],
        [(2, 49, E, "root")],
    ),
    case!(
        stats_socket_bad_mode,
        ["global", "    stats socket /run/pylon.sock mode 0999"],
        [(2, 39, E, "'mode' expects an octal mode such as 600, not '0999'")],
    ),
    case!(
        stats_socket_abstract_namespace,
        ["global", "    stats socket abns@pylon"],
        [(2, 18, E, "'abns@' stats sockets are not supported (use a path, unix@PATH, or ADDR:PORT)")],
    ),
    // ---- privileges: names are looked up, and the directory checked, as the file is read --
    case!(
        chroot_to_a_missing_directory,
        ["global", "    chroot /nonexistent/pylon-jail"],
        [(2, 12, E, "cannot use '/nonexistent/pylon-jail' as the chroot: No such file or directory")],
    ),
    case!(chroot_set_twice, ["global", "    chroot /", "    chroot /"], [(3, 5, E, "'chroot' is set twice")],),
    case!(unknown_user, ["global", "    user pylon-no-such-user"], [(2, 10, E, "unknown user 'pylon-no-such-user'")]),
    case!(
        unknown_group,
        ["global", "    user nobody", "    group pylon-no-such-group"],
        [(3, 11, E, "unknown group 'pylon-no-such-group'")],
    ),
    case!(
        user_and_uid_conflict,
        ["global", "    user nobody", "    uid 65534"],
        [(3, 5, E, "'uid' conflicts with 'user': keep one of them")],
    ),
    case!(
        group_and_gid_conflict,
        ["global", "    gid 65534", "    group root"],
        [(3, 5, E, "'group' conflicts with 'gid': keep one of them")],
    ),
    case!(user_set_twice, ["global", "    user root", "    user nobody"], [(3, 5, E, "'user' is set twice")]),
    case!(
        uid_minus_one,
        ["global", "    uid 4294967295"],
        [(2, 9, E, "invalid value '4294967295' for 'uid': expected a value from 0 to 4294967294")],
    ),
    case!(gid_not_a_number, ["global", "    gid nogroup"], [(2, 9, E, "invalid value 'nogroup' for 'gid'")]),
    case!(
        http_request_in_defaults,
        ["defaults", "    http-request deny"],
        [(2, 5, E, "'http-request' is not allowed in a defaults section")],
    ),
    case!(
        bind_ssl_without_certificate,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8443 ssl",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [(7, 5, E, "'ssl' on this bind needs a certificate: add 'crt <file.pem>' or 'crt-list <file>'")],
    ),
    case!(
        bad_character_in_a_name,
        ["frontend we/b", "    bind :8080"],
        [(1, 12, E, "character '/' is not permitted in frontend name 'we/b'")],
    ),
    case!(
        nbproc,
        ["global", "    nbproc 2"],
        [(2, 5, E, "'nbproc' is not supported by pylon: HAProxy 2.5 removed it too; use 'nbthread'")],
    ),
    // ---- several errors in one file, all reported in one run ----------------------------
    case!(
        several_errors_in_global,
        [
            "global",
            "    maxcon 100",
            "    nbthread 0",
            "    tune.bufsize 512",
            "    master-worker always",
            "    cpu-map 2 0"
        ],
        [
            (2, 5, E, "unknown keyword 'maxcon' in global; did you mean 'maxconn'?"),
            (3, 14, E, "invalid value '0' for 'nbthread': expected a value from 1 to 1024"),
            (4, 18, E, "invalid value '512' for 'tune.bufsize': expected a value from 1024 to 16777216"),
            (5, 19, E, "'master-worker' expects 'no-exit-on-failure', not 'always'"),
            (6, 13, E, "'2' does not include process (or thread group) 1"),
        ],
    ),
    case!(
        // One error from each stage: lexing, building, resolving and cross-checking.
        several_errors_across_stages,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    bind :99999",
            "    timeout client \"30s",
            "    default_backend nope",
            "backend app",
            "    server s1 127.0.0.1:9000 weight 300",
            "    server s2 db.invalid:5432",
            "    server s1 127.0.0.1:9001",
            "    balance wrr",
        ],
        [
            (8, 11, E, "invalid port '99999': ports run from 1 to 65535"),
            (9, 20, E, "unmatched double quote"),
            (10, 21, E, "no backend named 'nope'"),
            (12, 37, E, "invalid value '300' for 'weight'"),
            (13, 15, E, "could not resolve address 'db.invalid' of server 'app/s2'"),
            (14, 12, E, "backend 'app' has two servers named 's1'"),
            (15, 13, E, "unknown balance algorithm 'wrr'"),
        ],
    ),
    case!(
        several_errors_in_acls_and_rules,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend web",
            "    bind :8080",
            "    acl internal src 10.0.0.0/8 192.168.1.0/255.0.255.0",
            "    acl web dst_port eighty",
            "    acl site path_beg /api",
            "    use_backend app if or internal",
            "    use_backend app if internal !",
            "    use_backend app when internal",
            "    use_backend app if METH_GET",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ],
        [
            (8, 45, E, "'255.0.255.0' is not a contiguous netmask"),
            (9, 22, E, "'eighty' is not an integer or a range such as 1024:65535"),
            (10, 14, E, "fetch 'path' reads an HTTP request, but frontend 'web' is in mode tcp"),
            (11, 24, E, "'or' must stand between two ACLs"),
            (12, 33, E, "'!' must be followed by an ACL"),
            (13, 21, E, "expected 'if' or 'unless', found 'when'"),
            (14, 24, E, "fetch 'method' reads an HTTP request, but frontend 'web' is in mode tcp"),
        ],
    ),
    case!(
        several_errors_on_one_server_line,
        [
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout server 30s",
            "backend app",
            "    server s1 127.0.0.1:9000 ssl verify maybe weight 999",
            "    server s2 127.0.0.1:9000 check inter 2x rise 0 fall",
        ],
        [
            (6, 12, E, "'ssl' on this server verifies its certificate, but no 'ca-file' is given"),
            (6, 41, E, "'maybe' is not a valid value for 'verify'; expected one of: none, required"),
            (6, 54, E, "invalid value '999' for 'weight': expected a value from 0 to 256"),
            (7, 43, E, "invalid value '2x' for 'inter': unexpected 'x' after the number"),
            (7, 50, E, "invalid value '0' for 'rise': expected a value from 1 to 1000"),
            (7, 56, E, "server option 'fall' expects <count>"),
        ],
    ),
    // ---- behaviours fixed after review ----------------------------------------------------
    case!(
        bare_ipv6_server_needs_brackets,
        ["backend b", "    server s ::1"],
        [(2, 14, E, "ambiguous IPv6 address '::1': write it in brackets, [::1] or [::1]:PORT")],
    ),
    case!(
        server_at_the_clients_destination_is_not_supported,
        ["backend b", "    server s 0.0.0.0:80"],
        [(2, 14, E, "server address '0.0.0.0' (connect to the address the client connected to) is not supported")],
    ),
    case!(
        reversed_cpu_range,
        ["global", "    cpu-map 1/all 3-1"],
        [(2, 19, E, "invalid CPU set: '3-1' has a range whose first number (3) is above its last (1)")],
    ),
    case!(
        unclosed_if_points_at_the_if,
        ["global", "    maxconn 10", ".if defined(X)", "    nbthread 2"],
        [
            (3, 1, E, "conditional blocks ('.if' ... '.endif') are not supported yet"),
            (3, 1, E, "this '.if' block is not closed with '.endif'")
        ],
    ),
    case!(
        no_suggestion_of_a_keyword_the_section_refuses,
        ["defaults", "    bnd :80"],
        [(2, 5, E, "unknown keyword 'bnd' in defaults")],
    ),
    case!(
        dual_stack_wildcard_overlaps_the_ipv4_wildcard,
        [
            "defaults",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend v4",
            "    bind :8081",
            "    default_backend b",
            "frontend v6",
            "    bind :::8081",
            "    default_backend b",
            "backend b",
        ],
        [(9, 10, W, "[::]:8081 also accepts IPv4 connections, so it overlaps 0.0.0.0:8081; add 'v6only' to this bind")],
    ),
    case!(
        balance_with_junk_in_parentheses,
        ["backend b", "    balance roundrobin(x)"],
        [(2, 13, E, "'balance roundrobin' takes no parameter in parentheses")],
    ),
    case!(
        cpu_map_process_set_must_hold_one,
        ["global", "    cpu-map 2-3 0", "    cpu-map 1-x 0"],
        [
            (2, 13, E, "'2-3' does not include process (or thread group) 1"),
            (3, 13, E, "'1-x' does not include process")
        ],
    ),
    case!(
        integer_operator_beyond_the_limits,
        ["frontend f", "    acl a dst_port gt 9223372036854775807"],
        [(2, 23, E, "no integer is greater than 9223372036854775807")],
    ),
    case!(
        port_range_bound_twice_is_one_error,
        [
            "defaults",
            "    timeout client 30s",
            "frontend a",
            "    bind 127.0.0.1:8000-8009",
            "    bind 127.0.0.1:8000-8009",
        ],
        [(5, 10, E, "address 127.0.0.1:8000 (and 9 more addresses of this bind) is already bound by this section")],
    ),
    case!(
        section_header_with_a_word_after_from,
        ["defaults base", "frontend f from base extra"],
        [(2, 22, E, "unexpected 'extra' after 'from base'")],
    ),
    case!(
        thread_set_error_points_at_the_set,
        ["global", "    cpu-map 1/0-3 0"],
        [(2, 15, E, "invalid thread set: '0-3' is out of range")],
    ),
    case!(
        no_option_tcplog_is_refused_as_in_haproxy,
        ["defaults", "    no option tcplog"],
        [(2, 5, E, "'option tcplog' cannot be negated with 'no'")],
    ),
    case!(
        log_without_facility,
        ["global", "    log stdout format raw"],
        [(2, 26, E, "'log' expects a facility such as local0 after the target")],
    ),
];

/// True for the first line of a diagnostic (not a quoted source line, a caret line or a note).
fn is_header(line: &str) -> bool {
    !line.starts_with(' ')
}

/// The number of error diagnostics in `stderr`, located or not.
fn error_lines(stderr: &str) -> usize {
    stderr.lines().filter(|l| is_header(l) && l.contains(": error: ")).count()
}

/// True when the `…`-separated pieces of `pattern` appear in `text` in order.
fn contains_in_order(text: &str, pattern: &str) -> bool {
    let mut rest = text;
    for piece in pattern.split('…') {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// Checks that `stderr` holds `FILE:LINE:COL: SEVERITY: ...MESSAGE...` and that the caret line
/// under it starts at column COL. Returns a description of the problem, if any.
fn find_diagnostic(stderr: &str, file: &str, line: u32, col: u32, sev: &str, msg: &str) -> Result<(), String> {
    let prefix = format!("{file}:{line}:{col}: {sev}: ");
    let lines: Vec<&str> = stderr.lines().collect();
    let Some(i) = lines.iter().position(|l| l.strip_prefix(&prefix).is_some_and(|rest| contains_in_order(rest, msg)))
    else {
        return Err(format!("missing `{prefix}...{msg}...`"));
    };
    // The quoted line, then the carets: ` NN | text` and `    | ^^^`.
    let carets = lines.get(i + 2).copied().unwrap_or("");
    let Some((_, under)) = carets.split_once(" | ") else {
        return Err(format!("no caret line after `{}`", lines[i]));
    };
    let caret_col = under.chars().position(|c| c == '^').map(|p| p as u32 + 1);
    if caret_col != Some(col) {
        return Err(format!("caret of `{}` is at column {caret_col:?}, not {col}", lines[i]));
    }
    Ok(())
}

/// Runs one case and returns what went wrong, if anything.
fn check_case(case: &Case) -> Result<(), String> {
    let mut text = case.lines.join("\n");
    text.push('\n');
    let run = check_config("bad.cfg", &text);
    let mut problems = Vec::new();
    let errors = case.expect.iter().filter(|(_, _, sev, _)| *sev == E).count();
    let want_code = if errors > 0 { 1 } else { 0 };
    if run.code != want_code {
        problems.push(format!("exit code {} instead of {want_code}", run.code));
    }
    for &(line, col, sev, msg) in case.expect {
        if let Err(p) = find_diagnostic(&run.stderr, "bad.cfg", line, col, sev, msg) {
            problems.push(p);
        }
    }
    let found = error_lines(&run.stderr);
    if found != errors {
        problems.push(format!("{found} error lines instead of {errors}"));
    }
    if errors > 0 {
        let summary = format!("pylon: fatal errors found in configuration ({errors} error");
        if !run.stderr.lines().any(|l| l.starts_with(&summary)) {
            problems.push(format!("no summary line `{summary}...`"));
        }
    } else if run.stdout != "Configuration file is valid\n" {
        problems.push(format!("stdout is {:?}", run.stdout));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("case {}:\n  {}\n--- stderr ---\n{}", case.name, problems.join("\n  "), run.stderr))
    }
}

#[test]
fn every_bad_configuration_gives_its_diagnostics() {
    let failures: Vec<String> = CASES.iter().filter_map(|c| check_case(c).err()).collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), CASES.len(), failures.join("\n\n"));
}

#[test]
fn the_table_covers_enough_cases() {
    assert!(CASES.len() >= 35, "{} cases", CASES.len());
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len(), "two cases share a name");
}

/// Runs `pylon -c` with `args` inside `dir`.
fn check_in(dir: &Path, args: &[&str]) -> Run {
    pylon()
        .arg("-c")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("run pylon")
        .into()
}

/// Asserts every diagnostic and the exact error count of a multi-file run.
fn assert_diagnostics(run: &Run, expect: &[(&str, u32, u32, &str, &str)]) {
    assert_eq!(run.code, 1, "{}", run.stderr);
    for &(file, line, col, sev, msg) in expect {
        if let Err(p) = find_diagnostic(&run.stderr, file, line, col, sev, msg) {
            panic!("{p}\n--- stderr ---\n{}", run.stderr);
        }
    }
    let errors = expect.iter().filter(|e| e.3 == E).count();
    assert_eq!(error_lines(&run.stderr), errors, "{}", run.stderr);
}

/// Position in `stderr` of the first diagnostic of `file`.
fn first_mention(stderr: &str, file: &str) -> usize {
    let needle = format!("{file}:");
    stderr.lines().position(|l| l.starts_with(&needle)).unwrap_or_else(|| panic!("no diagnostic of {file}:\n{stderr}"))
}

#[test]
fn errors_of_two_files_are_reported_together() {
    let dir = TempDir::new();
    dir.write(
        "a.cfg",
        "global\n    maxcon 100\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    \
         timeout server 30s\nbackend app\n    server s1 127.0.0.1:9000 weight 300\n",
    );
    // The second file uses the first one's defaults and backend, and names one that is nowhere.
    dir.write("b.cfg", "frontend web\n    bind :8080\n    use_backend app if TRUE\n    default_backend nope\n");
    let run = check_in(dir.path(), &["-f", "a.cfg", "-f", "b.cfg"]);
    assert_diagnostics(
        &run,
        &[
            ("a.cfg", 2, 5, E, "unknown keyword 'maxcon' in global; did you mean 'maxconn'?"),
            ("a.cfg", 9, 37, E, "invalid value '300' for 'weight'"),
            ("b.cfg", 4, 21, E, "no backend named 'nope'"),
        ],
    );
    assert!(first_mention(&run.stderr, "a.cfg") < first_mention(&run.stderr, "b.cfg"), "{}", run.stderr);
    assert!(run.stderr.contains("(3 errors"), "{}", run.stderr);
}

#[test]
fn a_directory_is_read_in_name_order_without_hidden_and_other_files() {
    let dir = TempDir::new();
    // Byte order of names: digits, then capitals, then small letters.
    dir.write(
        "conf.d/10-defaults.cfg",
        "defaults base\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n    \
         bnd :80\n",
    );
    // `from base` only works when 10-defaults.cfg was read first.
    dir.write("conf.d/20-web.cfg", "frontend web from base\n    bind :8080\n    default_backend nope\n");
    dir.write("conf.d/Z-app.cfg", "backend app from base\n    server s1 127.0.0.1:70000\n");
    dir.write("conf.d/a-more.cfg", "backend more from base\n    balance wrr\n");
    // None of these is read: each would give an error.
    dir.write("conf.d/.hidden.cfg", "garbage\n");
    dir.write("conf.d/notes.txt", "garbage\n");
    dir.write("conf.d/old.cfg.bak", "garbage\n");
    dir.write("conf.d/sub.cfg/inner.cfg", "garbage\n");
    let run = check_in(dir.path(), &["-f", "conf.d"]);
    assert_diagnostics(
        &run,
        &[
            ("conf.d/10-defaults.cfg", 6, 5, E, "unknown keyword 'bnd' in defaults 'base'"),
            ("conf.d/20-web.cfg", 3, 21, E, "no backend named 'nope'"),
            ("conf.d/Z-app.cfg", 2, 25, E, "invalid port '70000'"),
            ("conf.d/a-more.cfg", 2, 13, E, "unknown balance algorithm 'wrr'"),
        ],
    );
    let order: Vec<usize> = ["10-defaults.cfg", "20-web.cfg", "Z-app.cfg", "a-more.cfg"]
        .iter()
        .map(|f| first_mention(&run.stderr, &format!("conf.d/{f}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "files not in name order:\n{}", run.stderr);
    for ignored in [".hidden.cfg", "notes.txt", "old.cfg.bak", "sub.cfg", "garbage"] {
        assert!(!run.stderr.contains(ignored), "{ignored} was read:\n{}", run.stderr);
    }
}
