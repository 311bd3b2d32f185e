//! Customer import and export over HTTP, on SQLite and PostgreSQL: a bad file is rejected
//! whole with a row-level report and writes nothing; a good XLSX is imported by the job in
//! one go, and importing it again duplicates nothing; lists and segments export as CSV and
//! XLSX; the console uploads through a multipart form and explains problems in Chinese.

mod common;

use reqwest::Method;
use serde_json::{json, Value};

use siyu_web::sheets::{read_grid, write_table, Format};

use common::{bearer, problem};

async fn upload(app: &common::App, token: &str, name: &str, bytes: Vec<u8>) -> Value {
    let r = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/customer-imports?file_name={name}")))
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

fn sheet(rows: &[&[&str]]) -> (Vec<String>, Vec<Vec<String>>) {
    let grid: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
    (grid[0].clone(), grid[1..].to_vec())
}

both!(a_bad_file_writes_nothing_and_a_good_one_lands_once, |app| async move {
    let seed = app.seed("imp").await;
    let t = seed.token.as_str();
    // Row 3 has a bad phone, row 4 an unknown guide: rejected whole, both reported.
    let csv = "姓名,手机号,跟进员工,外部编号\n李雷,13812345678,imp-g1,A1\n韩梅梅,12345,,A2\n林涛,,nobody,A3\n";
    let rec = upload(&app, t, "bad.csv", csv.as_bytes().to_vec()).await;
    assert_eq!(rec["status"], "rejected", "{rec}");
    assert_eq!(rec["problem_count"], 2);
    let probs: Vec<(i64, &str, &str)> = rec["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["row"].as_i64().unwrap(), p["column"].as_str().unwrap(), p["code"].as_str().unwrap()))
        .collect();
    assert_eq!(probs, vec![(3, "手机号", "invalid_format"), (4, "跟进员工", "unknown_staff")]);
    assert_eq!(app.store.count_customers(seed.tenant).await.unwrap(), 0, "nothing written");
    let id = rec["id"].as_str().unwrap();
    let report = bearer(&app, t, Method::GET, &format!("/api/v1/customer-imports/{id}/report?format=xlsx"), None).await;
    assert_eq!(report.status(), 200);
    let grid = read_grid(&report.bytes().await.unwrap()).unwrap();
    assert_eq!(grid.len(), 3, "header and two problems: {grid:?}");
    assert_eq!(grid[1][0], "3");

    // A clean XLSX: queued, imported by the job, counted.
    let (head, rows) = sheet(&[
        &["姓名", "手机号", "性别", "跟进员工", "门店", "外部编号"],
        &["李雷", "13812345678", "男", "imp-g1", "main", "A1"],
        &["韩梅梅", "+86 139 1234 5678", "女", "导购乙", "", "A2"],
        &["林涛", "", "", "", "", "A3"],
    ]);
    let xlsx = write_table(Format::Xlsx, "客户", &head, &rows).unwrap();
    let rec = upload(&app, t, "customers.xlsx", xlsx.clone()).await;
    assert_eq!(
        (rec["status"].as_str(), rec["format"].as_str(), rec["total"].as_i64()),
        (Some("queued"), Some("xlsx"), Some(3))
    );
    let id: uuid::Uuid = rec["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(app.store.count_customers(seed.tenant).await.unwrap(), 0, "queued, not yet written");
    siyu_web::imports::run(&app.store.store, seed.tenant, id).await.unwrap();
    siyu_web::imports::run(&app.store.store, seed.tenant, id).await.unwrap(); // a re-delivered job does nothing
    let done: Value =
        bearer(&app, t, Method::GET, &format!("/api/v1/customer-imports/{id}"), None).await.json().await.unwrap();
    assert_eq!(
        (done["status"].as_str(), done["created"].as_i64(), done["processed"].as_i64()),
        (Some("done"), Some(3), Some(3)),
        "{done}"
    );
    assert_eq!(app.store.count_customers(seed.tenant).await.unwrap(), 3);
    // The guide owns 李雷 and sees the number masked.
    let guide = app.session("imp", "guide").await;
    let mine: Value = guide.send(&app, Method::GET, "/api/v1/customers", None).await.json().await.unwrap();
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "李雷");
    assert!(!items[0].to_string().contains("13812345678"));
    // The guide may neither import nor read imports.
    problem(guide.send(&app, Method::GET, "/api/v1/customer-imports", None).await, 403).await;

    // The same file again: matched by external id, nothing duplicated.
    let again = upload(&app, t, "customers.xlsx", xlsx).await;
    let id2: uuid::Uuid = again["id"].as_str().unwrap().parse().unwrap();
    siyu_web::imports::run(&app.store.store, seed.tenant, id2).await.unwrap();
    let done: Value =
        bearer(&app, t, Method::GET, &format!("/api/v1/customer-imports/{id2}"), None).await.json().await.unwrap();
    assert_eq!((done["created"].as_i64(), done["existing"].as_i64()), (Some(0), Some(3)));
    assert_eq!(app.store.count_customers(seed.tenant).await.unwrap(), 3);
    let list: Value = bearer(&app, t, Method::GET, "/api/v1/customer-imports", None).await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);

    // Not a spreadsheet at all.
    let junk = upload(&app, t, "x.xlsx", b"PK\x03\x04garbage".to_vec()).await;
    assert_eq!((junk["status"].as_str(), junk["problems"][0]["code"].as_str()), (Some("rejected"), Some("unreadable")));
});

both!(lists_and_segments_export_as_csv_and_xlsx, |app| async move {
    let seed = app.seed("exp").await;
    let t = seed.token.as_str();
    for (name, phone) in [("甲", "13800000001"), ("乙", "13800000002")] {
        let r = bearer(&app, t, Method::POST, "/api/v1/customers", Some(&json!({"name": name, "phone": phone}))).await;
        assert_eq!(r.status(), 201);
    }
    let x = bearer(&app, t, Method::GET, "/api/v1/customers/export?format=xlsx", None).await;
    assert_eq!(x.status(), 200);
    assert!(x.headers()["content-type"].to_str().unwrap().contains("spreadsheetml"));
    let grid = read_grid(&x.bytes().await.unwrap()).unwrap();
    assert_eq!(grid.len(), 3);
    assert_eq!(grid[0][2], "name");
    assert!(grid.iter().any(|r| r[3] == "+8613800000001"), "the owner's token may see phones: {grid:?}");
    let c = bearer(&app, t, Method::GET, "/api/v1/customers/export?q=甲", None).await;
    let grid = read_grid(&c.bytes().await.unwrap()).unwrap();
    assert_eq!(grid.len(), 2, "filters apply: {grid:?}");
    let v = problem(bearer(&app, t, Method::GET, "/api/v1/customers/export?format=pdf", None).await, 400).await;
    assert_eq!(v["field"], "format");
    let seg: Value = bearer(&app, t, Method::POST, "/api/v1/segments", Some(&json!({"name": "全部", "expr": "all"})))
        .await
        .json()
        .await
        .unwrap();
    let x = bearer(
        &app,
        t,
        Method::GET,
        &format!("/api/v1/segments/{}/export?format=xlsx", seg["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(read_grid(&x.bytes().await.unwrap()).unwrap().len(), 3);
});

both!(the_console_uploads_and_explains_in_chinese, |app| async move {
    let seed = app.seed("imc").await;
    let owner = app.session("imc", "owner").await;
    let page = owner.send(&app, Method::GET, "/console/customers/import", None).await;
    assert_eq!(page.status(), 200);
    // A multipart form as the browser sends it.
    let boundary = "----siyu-test-boundary";
    let csv = "姓名,手机号\n李雷,12345\n";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n",
        owner.csrf
    );
    let r = owner
        .client
        .post(app.url("/console/customers/import"))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "followed the redirect to the import's page");
    let html = r.text().await.unwrap();
    assert!(html.contains("未通过检查") && html.contains("手机号格式不正确"), "{html}");
    // Without the CSRF token nothing is accepted.
    let forged = body.replace(&owner.csrf, "forged");
    let r = owner
        .client
        .post(app.url("/console/customers/import"))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let list: Value =
        bearer(&app, &seed.token, Method::GET, "/api/v1/customer-imports", None).await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let x = owner.send(&app, Method::GET, "/console/customers/export.xlsx", None).await;
    assert_eq!(x.status(), 200);
    assert_eq!(read_grid(&x.bytes().await.unwrap()).unwrap()[0][0], "客户");
});
