//! GraphiQL served by the server itself: the page and its assets are embedded in the binary,
//! so the page loads nothing from another origin and runs under a strict CSP.

use axum::{
    Router,
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// No inline scripts, nothing from other origins. Styles allow 'unsafe-inline' because
/// GraphiQL's editor injects `<style>` elements; fonts and icons are `data:` URLs in its CSS.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("../assets/graphiql/index.html");

/// (name, content type, bytes) of every asset under `/graphiql/assets/`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "graphql-ws.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/graphql-ws.min.js"),
    ),
    (
        "init.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/init.js"),
    ),
    (
        "page.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/graphiql/page.css"),
    ),
];

/// The GraphiQL page, with its security headers.
pub fn page() -> Response {
    let mut response = (StatusCode::OK, PAGE).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn asset(Path(name): Path<String>) -> Response {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(asset, _, _)| *asset == name) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let mut response = (StatusCode::OK, *bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The content changes only with the binary; a restart after an upgrade may serve new
    // bytes under the same name, so revalidate daily rather than caching forever.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

/// `/graphiql/assets/{file}`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/graphiql/assets/{file}", get(asset))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    fn referenced_assets() -> Vec<&'static str> {
        PAGE.split('"')
            .filter_map(|part| part.strip_prefix("/graphiql/assets/"))
            .collect()
    }

    #[test]
    fn page_loads_nothing_from_other_origins() {
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://") && !PAGE.contains("//cdn"));
        assert!(
            !PAGE.contains("<script>"),
            "inline scripts would need 'unsafe-inline'"
        );
        assert!(referenced_assets().len() >= 6);
    }

    #[test]
    fn page_sends_a_strict_csp() {
        let response = page();
        let csp = response
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok());
        assert!(csp.is_some_and(|csp| csp.contains("script-src 'self'") && !csp.contains("http")));
    }

    #[tokio::test]
    async fn every_referenced_asset_is_served() {
        for name in referenced_assets() {
            let request = axum::http::Request::get(format!("/graphiql/assets/{name}"))
                .body(Body::empty())
                .unwrap();
            let response = routes::<()>().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
            let expected = if name.ends_with(".css") {
                "text/css"
            } else {
                "text/javascript"
            };
            assert!(content_type.starts_with(expected), "{name}: {content_type}");
        }
    }

    #[tokio::test]
    async fn unknown_asset_is_404() {
        let request = axum::http::Request::get("/graphiql/assets/nope.js")
            .body(Body::empty())
            .unwrap();
        let response = routes::<()>().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
