//! The page layout and the small components every page shares, written with maud: every value
//! interpolated into markup is HTML-escaped by the macro, so only our own literals are markup.

use maud::{html, Markup, DOCTYPE};

use super::session::{Session, CSRF_FIELD};

/// A whole page: head, navigation for the signed-in principal (administrators see their areas
/// too), the title as `h1`, and `body`.
pub fn page(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Service Catalog" }
                link rel="icon" type="image/svg+xml" href="/console/static/favicon.svg";
                link rel="stylesheet" href="/console/static/console.css";
                script src="/console/static/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console" { "Service Catalog" }
                    @if let Some(session) = session {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/console/catalog" { "Catalog" } }
                                li { a href="/console/provisioned" { "My products" } }
                                li { a href="/console/plans" { "Plans" } }
                                li { a href="/console/tasks" { "Tasks" } }
                                @if session.principal.is_admin {
                                    li { a href="/console/admin/portfolios" { "Portfolios" } }
                                    li { a href="/console/admin/products" { "Products" } }
                                    li { a href="/console/admin/tag-options" { "Tag options" } }
                                    li { a href="/console/provisioned?scope=account" { "All provisioned" } }
                                    li { a href="/console/admin/users" { "Users" } }
                                    li { a href="/console/admin/roles" { "Roles" } }
                                    li { a href="/console/admin/audit" { "Audit" } }
                                    li { a href="/console/admin/webhooks" { "Webhooks" } }
                                    li { a href="/console/admin/campaigns" { "Upgrade campaigns" } }
                                }
                            }
                        }
                        form.signout method="post" action="/console/sign-out" {
                            (csrf_input(session))
                            span.who { (session.principal.name) @if session.principal.is_admin { " (administrator)" } }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_input(session: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf()); }
}

/// A POST form holding only a button (delete, terminate, …); `confirm` asks first when scripts
/// run. A button that asks first destroys something: it is styled as danger, unlike Save.
pub fn action_button(session: &Session, action: &str, label: &str, confirm: Option<&str>) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf_input(session))
            button.danger[confirm.is_some()] type="submit" { (label) }
        }
    }
}

/// An error message announced to screen readers, when there is one.
pub fn error_box(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            div.error role="alert" { (message) }
        }
    }
}

/// A status shown as a coloured badge.
pub fn status(value: &str) -> Markup {
    html! { span class={ "status status-" (value.to_ascii_lowercase()) } { (value) } }
}

/// Previous/next links of a paged list; `query` holds the list's other parameters.
pub fn pager(path: &str, query: &[(&str, &str)], page: i64, size: i64, total: i64) -> Markup {
    let pages = ((total + size - 1) / size).max(1);
    let link = |n: i64| {
        let n = n.to_string();
        let mut pairs = query.to_vec();
        pairs.push(("page", &n));
        url(path, &pairs)
    };
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a rel="prev" href=(link(page - 1)) { "← Previous" } }
            span { "Page " (page) " of " (pages) " · " (total) " in all" }
            @if page < pages { a rel="next" href=(link(page + 1)) { "Next →" } }
        }
    }
}

/// A GET form filtering a list by one text field.
pub fn filter_form(path: &str, label: &str, value: &str, hidden: &[(&str, &str)]) -> Markup {
    html! {
        form.filter method="get" action=(path) role="search" {
            @for (name, value) in hidden { input type="hidden" name=(name) value=(value); }
            label for="q" { (label) }
            input id="q" type="search" name="q" value=(value);
            button type="submit" { "Filter" }
        }
    }
}

/// `path?query` with the query form-encoded (empty values left out).
pub fn url(path: &str, query: &[(&str, &str)]) -> String {
    let mut encoder = form_urlencoded::Serializer::new(String::new());
    for (k, v) in query.iter().filter(|(_, v)| !v.is_empty()) {
        encoder.append_pair(k, v);
    }
    let query = encoder.finish();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// An id as one URL path segment.
pub fn seg(id: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_');
    percent_encoding::utf8_percent_encode(id, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_in_text_and_attributes() {
        let hostile = r#"<script>alert("x")</script>&'"#;
        let text = error_box(Some(hostile)).into_string();
        assert!(!text.contains("<script>"), "{text}");
        assert!(text.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;"), "{text}");
        let attribute = filter_form("/p", "Name", hostile, &[("k", "\"><b>")]).into_string();
        assert!(!attribute.contains("<script>") && !attribute.contains("\"><b>"), "{attribute}");
        let page = page(hostile, None, html! {}).into_string();
        assert!(!page.contains("<script>alert"), "{page}");
    }

    #[test]
    fn urls_encode_their_query_and_segments() {
        assert_eq!(url("/a", &[("q", "x y&z"), ("e", "")]), "/a?q=x+y%26z");
        assert_eq!(url("/a", &[]), "/a");
        assert_eq!(seg("pp-1/../x"), "pp-1%2F%2E%2E%2Fx");
    }

    #[test]
    fn pager_links_neighbouring_pages() {
        let html = pager("/l", &[("q", "a")], 2, 10, 25).into_string();
        assert!(html.contains("href=\"/l?q=a&amp;page=1\"") && html.contains("href=\"/l?q=a&amp;page=3\""), "{html}");
        assert!(html.contains("Page 2 of 3"));
        assert!(!pager("/l", &[], 1, 10, 5).into_string().contains("rel=\"next\""));
    }
}
